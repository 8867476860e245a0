"""An upstream's error spells the key it was sent in the ways servers and proxies do (percent-encoded twice, JSON
`\\u` escapes for every character, base64 wrapped at 76 columns as MIME writes it, inside a redirect's Location),
or sends its stream error one byte at a time so the key is split across every read: the client sees none of it.
Complements tests/security/test_secret_leaks.py (plain, URL-encoded, base64, split, JSON-escaped, cut). Real HTTP
on loopback, raw bodies as an HTTP client reads them.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest

from tests.doubles import AnthropicDouble, OpenAIDouble, Raw, StreamError, Trickle
from tests.harness import GatewayServer, make_config
from tests.security.test_secret_leaks import leaks

KEY = "tw-spell-" + secrets.token_hex(20)


def _sent(rec: Any) -> str:
    return (rec.headers.get("authorization") or rec.headers.get("x-api-key") or "").removeprefix("Bearer ")


def _error(text: str) -> Raw:
    return Raw(400, json.dumps({"error": {"type": "invalid_request_error", "message": text}}))


CASES: dict[str, tuple[str, bool, Callable[[Any], Any]]] = {
    "double-percent-encoded": ("local", False, lambda r: _error("key=" + quote(quote(_sent(r) + "/+", safe=""), safe=""))),
    "unicode-escaped": ("local", False, lambda r: Raw(400, '{"error": {"message": "key ' + "".join(
        f"\\u{ord(c):04x}" for c in _sent(r)) + '"}}')),
    "base64-mime-wrapped": ("local", False, lambda r: _error(base64.encodebytes(
        ("Authorization: Bearer " + _sent(r) + " " * 60).encode()).decode())),
    "redirect-location": ("local", False, lambda r: Raw(302, "", "text/plain", {"location": "http://x/?key=" + _sent(r)})),
    "openai-stream-error-byte-by-byte": ("local", True, lambda r: Trickle(0.0005, StreamError(
        2, "bad key Bearer " + _sent(r), "server_error"))),
    "anthropic-stream-error-byte-by-byte": ("frontier", True, lambda r: Trickle(0.0005, StreamError(
        3, "bad key " + _sent(r), "api_error"))),
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TW_SPELL_KEY", KEY)
        oup, aup = OpenAIDouble(api_key=KEY).start(), AnthropicDouble(api_key=KEY).start()
        g = GatewayServer(make_config({
            "breaker": {"failures": 1000},
            "providers": {"o": {"kind": "openai", "base_url": oup.url + "/v1", "api_key_env": "TW_SPELL_KEY"},
                          "a": {"kind": "anthropic", "base_url": aup.url, "api_key_env": "TW_SPELL_KEY"}},
            "models": {"local": {"provider": "o", "model": "m"}, "frontier": {"provider": "a", "model": "big"}},
            "routes": {}}, tmp_path_factory.mktemp("spell"))).start()
        try:
            yield {"g": g, "local": oup, "frontier": aup}
        finally:
            g.stop()
            oup.stop()
            aup.stop()


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
@pytest.mark.parametrize("name", list(CASES))
def test_no_spelling_of_the_key_reaches_the_client(env: dict[str, Any], name: str, fmt: str) -> None:
    model, stream, item = CASES[name]
    up = env[model]
    up.reset()
    up.script(item)
    g = env["g"]
    if fmt == "openai":
        url, headers = g.url + "/v1/chat/completions", {}
    else:
        url, headers = g.url + "/v1/messages", {"anthropic-version": "2023-06-01"}
    body = {"model": model, "max_tokens": 10, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=30) as c:
        r = c.post(url, json=body, headers=headers)
    assert up.requests, "the upstream double was never asked"
    seen = f"{r.status_code}\n{r.headers!r}\n{r.text}"
    assert not leaks(seen, (KEY,)), seen[-2000:]
