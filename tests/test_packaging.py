"""A non-editable install in a fresh venv serves the page and the WebSocket.

This builds the wheel, installs it where the checkout is out of reach, and
runs the installed `chatbuddy` script, as a user who runs `pip install .` would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from chatbuddy.client.launcher import launch_server
from tests.helpers import TIMEOUT, ChatClient

ROOT = Path(__file__).resolve().parent.parent
#: What a copy of the checkout leaves out: environments, caches, build output.
NOT_SOURCE = (
    ".venv", ".git", "node_modules", "__pycache__", "*.egg-info", "build", "dist",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", "results",
)  # fmt: skip
INSTALL_TIMEOUT = 60 * TIMEOUT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout: building leaves build/ and
    *.egg-info behind, and they belong in no one's source tree."""
    source = tmp_path_factory.mktemp("source") / "chatbuddy"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
        timeout=INSTALL_TIMEOUT,
    )
    return next(out.glob("chatbuddy-*.whl"))


def test_the_wheel_carries_the_page_the_cli_and_the_shop_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    page = [f"chatbuddy/static/{path.name}" for path in (ROOT / "static").iterdir()]
    assert "chatbuddy/static/chat.js" in page
    for needed in [
        *page,  # every module of the page, or it breaks where it was installed
        "chatbuddy/cli/main.py",
        "chatbuddy/agents/data/shop.json",
        "chatbuddy/py.typed",
    ]:
        assert needed in names
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"chatbuddy", "chatbuddy-0.1.0.dist-info"}  # no stray "cli" or "tests"


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; its bin/ folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    subprocess.run(
        [str(env_dir / "bin" / "pip"), "install", "--quiet", str(wheel)],
        check=True,
        timeout=INSTALL_TIMEOUT,
    )
    return env_dir / "bin"


def test_the_installed_package_is_the_one_imported_outside_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import chatbuddy; print(chatbuddy.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert where.startswith(str(installed.parent)), where


async def test_a_fresh_venv_install_serves_the_page_and_the_socket(
    installed: Path, tmp_path: Path
) -> None:
    server = launch_server(
        command=[str(installed / "chatbuddy"), "serve"], cwd=tmp_path, timeout=4 * TIMEOUT
    )
    try:
        page = await AsyncHTTPClient().fetch(server.url + "/")
        assert b"<title>ChatBuddy</title>" in page.body
        client = await ChatClient.open(server.port, "installed")
        await client.greeting()
        reply = await client.chat("installed", "How much is the Nintendo Switch OLED?")
        assert "129,990 HUF" in reply["content"]
    finally:
        assert server.stop(timeout=TIMEOUT) == 0
