"""The host a request is for (wire11). An HTTP/1.1 request without `Host` (or with an empty one) was served: RFC 9112
§3.2 says 400. An absolute-form target (`POST http://evil.example/v1/chat/completions HTTP/1.1`) was served with the
`Host` line checked by the DNS-rebinding guard and the target's host ignored (uvicorn keeps only its path): RFC 9112
§3.2.2 makes the target's authority the host. Now the authority is the Host the guard checks (server/request_target.py),
a `Host` line naming another host than the target is 400 (ambiguous, as two Host lines), and a target that is not
http(s), carries a user or has no path is 400; each in the path's schema, before any route or upstream call.
HTTP/1.0 needs no Host. Raw loopback sockets: no SDK sends these."""

from __future__ import annotations

import json
import re

from tests.harness import exchange

CHAT = b'{"model":"local","messages":[{"role":"user","content":"hi"}]}'


def _status(got: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)


def _error(got: bytes) -> dict:
    return json.loads(got.partition(b"\r\n\r\n")[2])


def test_http11_without_host_is_400_in_the_paths_schema(gateway):
    g = gateway({})
    got = exchange(g.port, b"GET /health HTTP/1.1\r\nconnection: close\r\n\r\n")
    assert _status(got) == [b"400"] and "Host" in _error(got)["error"]["message"], got[-300:]
    got = exchange(g.port, b"POST /v1/messages HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
                   b"connection: close\r\n\r\n{}")
    assert _status(got) == [b"400"] and _error(got)["type"] == "error", got[-300:]  # Anthropic's schema
    got = exchange(g.port, b"GET /health HTTP/1.1\r\nhost: \r\nconnection: close\r\n\r\n")
    assert _status(got) == [b"400"], got[-300:]
    # HTTP/1.0 has no Host to send: served; HTTP/1.1 with one: served
    assert _status(exchange(g.port, b"GET /health HTTP/1.0\r\n\r\n")) == [b"200"]
    assert _status(exchange(g.port, b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")) == [b"200"]


def test_an_absolute_target_naming_another_host_is_refused(two_tier, openai_up):
    g = two_tier()
    for line in (b"GET http://evil.example/health", b"GET http://evil.example:%d/health" % g.port):
        got = exchange(g.port, line + b" HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nconnection: close\r\n\r\n" % g.port)
        assert _status(got) == [b"400"] and "host" in _error(got)["error"]["message"], got[-300:]
    got = exchange(g.port, b"POST http://evil.example/v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                   b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                   % (len(CHAT), CHAT))
    assert _status(got) == [b"400"], got[-300:]
    assert openai_up.requests == []  # no upstream call
    # HTTP/1.0 without Host: the target's host is the one the DNS-rebinding guard checks
    got = exchange(g.port, b"GET http://evil.example/health HTTP/1.0\r\n\r\n")
    assert _status(got) == [b"403"] and "evil.example" in _error(got)["error"]["message"], got[-300:]


def test_an_absolute_target_naming_this_host_is_served(gateway):
    g = gateway({})
    got = exchange(g.port, b"GET http://127.0.0.1:%d/health HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nconnection: close"
                   b"\r\n\r\n" % (g.port, g.port))
    assert _status(got) == [b"200"], got[-300:]
    assert _status(exchange(g.port, b"GET http://localhost/health HTTP/1.0\r\n\r\n")) == [b"200"]


def test_absolute_targets_that_are_not_http_urls_are_400(gateway):
    g = gateway({})
    for target in (b"ftp://127.0.0.1/health", b"http://user:pw@127.0.0.1/health", b"http://127.0.0.1"):
        got = exchange(g.port, b"GET %s HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n" % target)
        assert _status(got) == [b"400"] and "target" in _error(got)["error"]["message"], (target, got[-300:])
    got = exchange(g.port, b"POST http://x@127.0.0.1/v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                   b"content-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
    assert _status(got) == [b"400"] and _error(got)["type"] == "error", got[-300:]  # Anthropic's schema


def test_a_host_value_that_is_no_host_and_port_is_400(gateway):
    """RFC 9112 §3.2: an invalid Host value is a 400. The guard read `127.0.0.1:80@evil.com` and `[::1]evil.com` as
    loopback's (the text before the port, inside the brackets) and served them; a URL parser reads evil.com."""
    g = gateway({})
    for host in (b"127.0.0.1:80@evil.com", b"[::1]evil.com", b"127.0.0.1:x", b"[::1]:80:80", b"::1"):
        got = exchange(g.port, b"GET /health HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n" % host)
        assert _status(got) == [b"400"] and "Host" in _error(got)["error"]["message"], (host, got[-300:])
    for host in (b"127.0.0.1:%d" % g.port, b"[::1]:%d" % g.port, b"localhost", b"LOCALHOST."):
        got = exchange(g.port, b"GET /health HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n" % host)
        assert _status(got) == [b"200"], (host, got[-300:])


def test_a_host_line_naming_the_targets_host_in_an_equivalent_form_is_served(gateway):
    """review34c: the authority was compared with the Host line as written, so the same host in another normal form
    (RFC 3986 §6.2.3: a default port written or left out, case, the root's trailing dot) was 400. A different port or
    host is still 400."""
    g = gateway({})
    same = [(b"http://127.0.0.1/health", b"127.0.0.1:80"), (b"http://127.0.0.1:80/health", b"127.0.0.1"),
            (b"https://127.0.0.1/health", b"127.0.0.1:443"), (b"https://127.0.0.1:443/health", b"127.0.0.1"),
            (b"http://LOCALHOST./health", b"localhost"), (b"http://localhost/health", b"LocalHost.:80"),
            (b"http://[::1]/health", b"[::1]:80"), (b"http://[::1]:%d/health" % g.port, b"[::1]:%d" % g.port)]
    for target, host in same:
        got = exchange(g.port, b"GET %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n" % (target, host))
        assert _status(got) == [b"200"], (target, host, got[-300:])
    other = [(b"http://127.0.0.1/health", b"127.0.0.1:443"), (b"https://127.0.0.1/health", b"127.0.0.1:80"),
             (b"http://127.0.0.1:81/health", b"127.0.0.1"), (b"http://localhost/health", b"localhost.evil.example"),
             (b"http://[::1]/health", b"[::1]:x")]
    for target, host in other:
        got = exchange(g.port, b"GET %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n" % (target, host))
        assert _status(got) == [b"400"], (target, host, got[-300:])
