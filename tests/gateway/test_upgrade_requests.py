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
