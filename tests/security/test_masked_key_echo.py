"""An upstream that refuses a key and echoes it masked, the way OpenAI's 401 does for any key ("Incorrect API key
provided: 0a1b2c3d****************e8f9"): for a key without the `sk-` prefix (an Azure-style hex key in `api-key`,
a proxy's own key) its first 8 and last 4 characters reached the client, the console and the ledger, since the
scrubber recognised only runs of 12+ characters of a key by value and masked keys only after `sk-` (session 37,
secrets37). Real HTTP on loopback, the official SDK, a double upstream."""

from __future__ import annotations

import logging
import secrets
import sqlite3

import openai
import pytest

from tests.doubles import Fail
from tests.gateway.conftest import oai
from tests.harness import two_tier_config
from tierwise.secret_scrub import SecretScrubber


def _masked(key: str) -> str:
    return f"Incorrect API key provided: {key[:8]}{'*' * 24}{key[-4:]}. You can find your API key at the portal."


def test_a_masked_echo_of_a_key_without_a_known_prefix_reaches_no_one(gateway, openai_up, anthropic_up, tmp_path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    key = secrets.token_hex(16)
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    cfg["providers"]["localsrv"]["headers"] = {"api-key": key}
    cfg["ledger"]["path"] = str(tmp_path / "ledger.db")
    g = gateway(cfg)
    openai_up.script(lambda r: Fail(401, _masked(r.headers["api-key"]), "invalid_request_error"))
    with caplog.at_level(logging.WARNING), pytest.raises(openai.APIStatusError) as e:
        oai(g).chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}])
    g.flush()
    said = f"{e.value} {e.value.body}"
    assert "Incorrect API key provided" in said, said  # the upstream's words still reach the client
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        ledger = "\n".join(repr(row) for row in db.execute("SELECT * FROM requests"))
    assert "Incorrect API key" in ledger, ledger
    for where, text in (("client", said), ("log", caplog.text), ("ledger", ledger)):
        assert key[:8] not in text and key[-4:] + "." not in text, (where, text)


@pytest.mark.parametrize("text", ["a **bold** word", "x***y", "12****", "see ****", "a*** b", "**** note ****"])
def test_asterisks_without_a_key_before_them_stay(text: str) -> None:
    assert SecretScrubber().scrub(text) == text


@pytest.mark.parametrize("text", ["key AbCd1234**********wxyz refused", "token ab_c-12*****", "xyz9****"])
def test_any_key_masked_with_asterisks_is_redacted_by_shape(text: str) -> None:
    out = SecretScrubber().scrub(text)
    assert "*" not in out and "[redacted]" in out, out
