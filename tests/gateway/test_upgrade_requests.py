"""Requests asking to switch protocols (`Upgrade: websocket`, `h2c` with `Connection: upgrade`): the gateway has no
WebSocket or HTTP/2 endpoint and answers such a request as the plain HTTP/1.1 request it also is (RFC 9110 §7.8). But
llhttp ends an upgrade request at its header block (a `Content-Length` body belongs to the other protocol) and then
parses the next read as HTTP again: the body of a `POST` with `Upgrade`, sent after its headers, was served as a
request of its own (smuggling past a proxy in front that forwarded it as the POST's body: the websocket config of
nginx sets `Upgrade`/`Connection: upgrade` on every request it passes), and a request pipelined in the same read was
dropped unanswered. Now the answer closes the connection and nothing after the upgrade request is parsed (wire11).
Raw loopback sockets."""

from __future__ import annotations

import re

from tests.harness import exchange

UP = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: %s\r\nconnection: upgrade\r\n\r\n"
NEXT = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-smuggled: 1\r\n\r\n"
POST = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n")


def _status(got: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", got)


def test_the_body_of_an_upgrade_post_is_not_served_as_a_request(gateway):
    g = gateway({})
    got = exchange(g.port, POST % len(NEXT), then=(NEXT,), timeout=5)
    assert _status(got) == [b"400"], got  # before: [400, 200], the body served as a request
    assert b"connection: close" in got.lower()


def test_nothing_after_an_upgrade_request_is_parsed(gateway):
    g = gateway({})
    for proto in (b"websocket", b"h2c"):
        for got in (exchange(g.port, UP % proto + NEXT, timeout=5), exchange(g.port, UP % proto, then=(NEXT,), timeout=5)):
            assert _status(got) == [b"200"] and b"connection: close" in got.lower(), (proto, got)
    # a request without Upgrade keeps its connection: two answers
    assert _status(exchange(g.port, NEXT + NEXT.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"))) == [b"200"] * 2


CHAT = b'{"model":"local","messages":[{"role":"user","content":"hi"}]}'
# as `curl --http2 -d ... http://...` sends it: it asks for h2c on every request, a POST included
H2C = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: curl/7.88.1\r\naccept: */*\r\n"
       b"connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
       b"content-type: application/json\r\n%s\r\n\r\n")


def test_the_body_of_an_upgrade_post_is_its_body(two_tier, openai_up):
    """review34c: the body was dropped (llhttp ended the message at its header block), so every POST with `Upgrade`
    was answered 400 "request body is empty": `curl --http2 -d`, and every POST through an nginx that sets
    `Connection: upgrade` on all requests. Now it is read as the body (Content-Length or chunked, in the same read or
    later ones), the request served, the connection closed after the answer, and nothing after the body parsed (not
    even refused)."""
    g = two_tier()
    length = b"content-length: %d" % len(CHAT)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(CHAT), CHAT)
    sends = [(H2C % length + CHAT + NEXT, ()), (H2C % length, (CHAT[:20], CHAT[20:] + NEXT)),
             (H2C % b"transfer-encoding: chunked" + chunked + NEXT, ()),
             (H2C % b"transfer-encoding: chunked", (chunked[:9], chunked[9:] + NEXT)),
             (POST % len(CHAT) + CHAT, (NEXT,)), (H2C % length + CHAT + b"\x00 not HTTP\r\n\r\n", ())]
    for first, then in sends:
        got = exchange(g.port, first, then=then, timeout=5)
        assert _status(got) == [b"200"] and b'"content":"ok"' in got, (first[-60:], got[-300:])
        assert b"connection: close" in got.lower() and b"x-smuggled" not in got
    assert len(openai_up.requests) == len(sends)
