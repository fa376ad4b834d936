"""Settings: allowed origins are taken the ways users write them, or refused with a reason."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

# setup.py maps cli/ to chatbuddy.cli; mypy checks that folder as "cli".
from chatbuddy.cli.main import cli  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.errors import ConfigurationError
from chatbuddy.settings import Settings, parse_origins


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        (["https://shop.example"], ("https://shop.example",)),
        (["https://shop.example/"], ("https://shop.example",)),
        (["HTTPS://Shop.Example:443/"], ("https://shop.example",)),
        (["http://localhost:8080"], ("http://localhost:8080",)),
        (["https://a.example, https://b.example"], ("https://a.example", "https://b.example")),
        (["https://a.example,https://b.example"], ("https://a.example", "https://b.example")),
        (["https://a.example https://b.example/"], ("https://a.example", "https://b.example")),
        (["https://a.example,", "https://b.example"], ("https://a.example", "https://b.example")),
        (["https://a.example", "https://a.example/"], ("https://a.example",)),
        # As a browser serialises it (the WHATWG URL parser gives the same punycode).
        (["https://bolt.árvíztűrő.hu"], ("https://bolt.xn--rvztr-wqa0gx3bwi.hu",)),
        (["http://[::1]:8000"], ("http://[::1]:8000",)),
        ([" ", ""], ()),
    ],
)
def test_origins_are_taken_as_users_write_them_and_kept_as_browsers_send_them(
    written: list[str], meant: tuple[str, ...]
) -> None:
    assert parse_origins(written) == meant
    assert Settings(allowed_origins=tuple(written)).allowed_origins == meant


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("*", "wildcards are not accepted, because '*' would let every website"),
        ("https://*.shop.example", "wildcards are not accepted"),
        ("shop.example", "'shop.example' is not an http(s) origin"),
        ("null", "'null' is not an http(s) origin"),
        ("ftp://shop.example", "is not an http(s) origin"),
        ("https://shop.example/chat", "has more than an origin"),
        ("https://shop.example?x=1", "has more than an origin"),
        ("https://shop.example:99999", "has a bad port"),
    ],
)
def test_what_is_not_an_origin_is_refused_with_the_value_and_the_way_to_write_it(
    written: str, complaint: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings(allowed_origins=(written,))
    assert complaint in str(refused.value)
    assert "e.g. https://shop.example" in str(refused.value)


def test_serve_refuses_a_star_in_the_environment_with_an_explanation() -> None:
    result = CliRunner().invoke(
        cli, ["serve"], env={"CHATBUDDY_ALLOWED_ORIGINS": "https://shop.example, *"}
    )
    assert result.exit_code == 3
    assert "wildcards are not accepted" in result.output
    assert "name each shop's origin" in result.output
