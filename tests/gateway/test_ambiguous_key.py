"""A request with two `Authorization` (or two `x-api-key`) lines (RFC 9110 11.6.2: a singleton field). The gateway's
one reader of the key (server/key_scopes.client_credential) takes the last line, for authentication and for what is
counted under the key alike; a proxy in front that checks, logs or rate-limits by the first line disagreed:
`authorization: Bearer wrong` then the gateway's key was served (200) (review33c). Now 400 in the path's schema before
any route, as two `Host` lines (wire10). One of each (`x-api-key` and `Authorization`) is still served: SDKs send
both. Raw sockets: no SDK sends two of one."""

from __future__ import annotations

import json
import re

from tests.doubles import Reply
from tests.harness import exchange, two_tier_config

KEY = "client-secret-123"
GOOD, BAD = b"authorization: Bearer %s\r\n" % KEY.encode(), b"authorization: Bearer wrong\r\n"
XGOOD, XBAD = b"x-api-key: %s\r\n" % KEY.encode(), b"x-api-key: wrong\r\n"
BODY = json.dumps({"model": "main", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}).encode()


def _status(got: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", got)


def _post(path: bytes, lines: bytes) -> bytes:
    return (b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\n"
            b"connection: close\r\n%scontent-length: %d\r\n\r\n%s" % (path, lines, len(BODY), BODY))


def _keyed(gateway, openai_up, anthropic_up, monkeypatch):
    """A gateway that asks for KEY, route `main` on the local double (which answers "ok")."""
    monkeypatch.setenv("TW_CLIENT_KEY", KEY)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["local"]})
    cfg["server"] = {"api_keys_env": ["TW_CLIENT_KEY"]}
    openai_up.default = Reply(text="ok")
    return gateway(cfg)


def test_two_key_lines_are_refused_400(gateway, openai_up, anthropic_up, monkeypatch):
    g = _keyed(gateway, openai_up, anthropic_up, monkeypatch)
    for path, anthropic in ((b"/v1/chat/completions", False), (b"/v1/messages", True)):
        for lines in (BAD + GOOD, GOOD + GOOD, XBAD + XGOOD):
            got = exchange(g.port, _post(path, lines))
            assert _status(got) == [b"400"], got[:300]
            err = json.loads(got.partition(b"\r\n\r\n")[2])
            assert "more than one" in err["error"]["message"] and (err.get("type") == "error") == anthropic, err
    assert openai_up.requests == []
    for lines in (GOOD, XGOOD, XGOOD + GOOD):  # one line of each name: served
        assert _status(exchange(g.port, _post(b"/v1/chat/completions", lines))) == [b"200"]


def test_two_key_lines_after_a_served_request_are_refused_400(gateway, openai_up, anthropic_up, monkeypatch):
    """The same after a request with one key line was served: the guard's shortcut for a Host and Content-Type it had
    passed before read the header dict (the last line of each name) and skipped the look at repeated lines ('Bearer
    wrong' then the key: 200; session 34, perf34)."""
    g = _keyed(gateway, openai_up, anthropic_up, monkeypatch)
    for path in (b"/v1/chat/completions", b"/v1/messages"):
        assert _status(exchange(g.port, _post(path, GOOD))) == [b"200"]
        for lines in (BAD + GOOD, XBAD + XGOOD):
            got = exchange(g.port, _post(path, lines))
            assert _status(got) == [b"400"], got[:300]
            assert "more than one" in json.loads(got.partition(b"\r\n\r\n")[2])["error"]["message"]
    assert len(openai_up.requests) == 2  # the two served ones only
