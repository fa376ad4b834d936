"""The page's close codes (static/protocol.js) are the server's (chatbuddy/wire/close_codes.py)."""

from __future__ import annotations

import re
from pathlib import Path

from chatbuddy.wire.close_codes import Close, retry

PROTOCOL_JS = (Path(__file__).parent.parent / "static" / "protocol.js").read_text(encoding="utf-8")


def js_table(name: str) -> dict[int, str]:
    """The entries ``code: "value"`` of the frozen object ``name`` in protocol.js."""
    found = re.search(rf"const {name} = Object\.freeze\(\{{(.*?)\}}\);", PROTOCOL_JS, flags=re.S)
    assert found, f"no {name} in static/protocol.js"
    body = re.sub(r"//[^\n]*", "", found.group(1))  # comments may name other codes
    entries = re.findall(r"(\d+)\s*:\s*\"(\w+)\"", body)
    assert len(entries) == body.count(":"), f"{name} has entries this test cannot read"
    return {int(code): value for code, value in entries}


def test_the_page_knows_exactly_the_codes_the_server_sends() -> None:
    assert set(js_table("CLOSE_CODES")) == {int(code) for code in Close}


def test_the_page_retries_exactly_the_codes_the_server_says_to_retry() -> None:
    for code, action in js_table("CLOSE_CODES").items():
        assert action in ("retry", "terminal"), (code, action)
        assert (action == "retry") == retry(code), f"{code}: the page would {action}"


def test_a_code_the_table_lacks_and_a_lost_connection_are_retried_on_both_sides() -> None:
    assert 'return CLOSE_CODES[code] || "retry";' in PROTOCOL_JS
    assert retry(None)  # the server's name for a lost connection
    assert retry(1006)  # the browser's
    assert retry(4999)


def test_the_codes_after_which_the_page_starts_a_new_session_are_the_session_endings() -> None:
    ends = js_table("SESSION_ENDS")
    assert ends == {
        Close.SESSION_EXPIRED: "expired",
        Close.SESSION_REPLACED: "replaced",
        Close.SESSION_DELETED: "deleted",
    }
    assert not any(retry(code) for code in ends)
