"""A request with two `Host` (or two `Origin`) lines (RFC 9112 §3.2: a server MUST answer 400). The DNS-rebinding
and cross-site guard (server/origin_guard.py) read the last line and the app's headers keep the last, while a proxy
in front may route or check by the first: `Host: attacker.example` then `Host: 127.0.0.1` was served (200) as
loopback's. Now 400 in the path's schema, before any route runs (wire10). Raw sockets: no SDK sends two."""

from __future__ import annotations

import json
import re

from tests.harness import exchange


def _status(got: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", got)


def test_two_host_lines_are_refused_400(gateway):
    g = gateway({})
    for path, anthropic in ((b"/health", False), (b"/v1/messages", True)):
        got = exchange(g.port, b"GET %s HTTP/1.1\r\nhost: attacker.example\r\nhost: 127.0.0.1\r\n"
                       b"connection: close\r\n\r\n" % path)
        assert _status(got) == [b"400"], got[:300]
        err = json.loads(got.partition(b"\r\n\r\n")[2])
        assert ("Host" in (err["error"]["message"])) and (err.get("type") == "error") == anthropic, err
    # one Host, as every client sends: served
    assert _status(exchange(g.port, b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")) == [b"200"]


def test_two_origin_lines_are_refused_400(gateway):
    g = gateway({})
    got = exchange(g.port, b"GET /health HTTP/1.1\r\nhost: 127.0.0.1:%d\r\norigin: http://attacker.example\r\n"
                   b"origin: http://127.0.0.1:%d\r\nconnection: close\r\n\r\n" % (g.port, g.port))
    assert _status(got) == [b"400"], got[:300]
    assert b"access-control-allow-origin" not in got.lower()


def test_two_host_lines_after_a_served_request_are_refused_400(gateway):
    """The guard's shortcut (`OriginGuard.passes`: a Host value that passed before needs no second look) read the header
    dict, which keeps the last line: once `127.0.0.1` had been served, `attacker.example` then `127.0.0.1` was served
    too (200) (session 34, perf34). A repeated name now always takes the full look."""
    g = gateway({})
    ok = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    assert _status(exchange(g.port, ok)) == [b"200"]
    got = exchange(g.port, b"GET /health HTTP/1.1\r\nhost: attacker.example\r\nhost: 127.0.0.1\r\n"
                   b"connection: close\r\n\r\n")
    assert _status(got) == [b"400"], got[:300]
    assert _status(exchange(g.port, ok)) == [b"200"]
