"""A chunked body's trailer fields (review33c). uvicorn appended them to the request's header list, the one the app's
scope holds, so a trailer worked as a header no proxy in front had seen (RFC 9110 6.5.1: a trailer field is not merged
into the header section): a request with no key, or the wrong one, in its header block and the right key in a trailer
was answered; a trailer `content-type` replaced the header's. And a trailer section that arrived in the read of its
last chunk was never measured: 100 KB of trailers under a 4 KiB `max_header_bytes` were read and the request served.
Now trailer fields are counted (with the header fields, `max_header_count`) and measured (`max_header_bytes`, however
the bytes fall into reads), never seen by the app. Raw sockets on loopback (no SDK sends trailers)."""

from __future__ import annotations

import json
import re

from tests.doubles import Reply
from tests.harness import exchange, two_tier_config

KEY = "client-secret-123"
BODY = json.dumps({"model": "main", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _answers(got: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", got)


def _chunked(head: bytes, trailers: bytes) -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"connection: close\r\n" + head + b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n%s\r\n"
            % (len(BODY), BODY, trailers))


def _keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch, **limits):
    monkeypatch.setenv("TW_CLIENT_KEY", KEY)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["local"]})
    cfg["server"] = {"api_keys_env": ["TW_CLIENT_KEY"], "limits": limits}
    openai_up.default = Reply(text="ok")
    return gateway(cfg)


def test_a_key_in_a_trailer_does_not_authenticate(gateway, openai_up, anthropic_up, monkeypatch):
    g = _keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch)
    trailer = b"authorization: Bearer %s\r\n" % KEY.encode()
    assert _answers(exchange(g.port, _chunked(b"", trailer))) == [b"401"]
    assert _answers(exchange(g.port, _chunked(b"authorization: Bearer wrong\r\n", trailer))) == [b"401"]
    assert _answers(exchange(g.port, _chunked(b"", b"x-api-key: %s\r\n" % KEY.encode()))) == [b"401"]
    assert openai_up.requests == []
    # the key in the header block, trailers beside it: served, the trailers ignored
    got = exchange(g.port, _chunked(trailer, b"content-type: text/plain\r\nx-t: 1\r\n"))
    assert _answers(got) == [b"200"], got[:300]


def test_trailer_bytes_are_bounded_in_any_read(gateway, openai_up, anthropic_up, monkeypatch):
    g = _keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch, max_header_bytes=4096)
    auth = b"authorization: Bearer %s\r\n" % KEY.encode()
    big = _chunked(auth, b"x-t: " + b"b" * 100_000 + b"\r\n")
    got = exchange(g.port, big)  # the last chunk and its trailers in one read
    assert _answers(got) == [b"431"], got[:300]
    assert "max_header_bytes" in json.loads(got.partition(b"\r\n\r\n")[2])["error"]["message"]
    got = exchange(g.port, big[:-60_000], then=(big[-60_000:],))  # in two reads, neither past the limit whole
    assert _answers(got) == [b"431"], got[:300]
    assert openai_up.requests == []
    # a trailer section exactly at the limit (its bytes: from after the last chunk's line to its blank line's end)
    fits = _chunked(auth, b"x-t: " + b"b" * (4096 - 2 - 7) + b"\r\n")
    assert _answers(exchange(g.port, fits)) == [b"200"]
    assert _answers(exchange(g.port, fits.replace(b"x-t: b", b"x-t: bb"))) == [b"431"]


def test_trailers_sent_a_byte_at_a_time_are_measured(gateway, openai_up, anthropic_up, monkeypatch):
    g = _keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch, max_header_bytes=4096)
    auth = b"authorization: Bearer %s\r\n" % KEY.encode()
    req = _chunked(auth, b"x-t: " + b"b" * 5000 + b"\r\n")
    cut = req.index(b"0\r\nx-t") + 3
    got = exchange(g.port, req[:cut], then=tuple(req[i:i + 50] for i in range(cut, len(req), 50)),  # 50 bytes a read
                   pause=0.001)
    assert _answers(got) == [b"431"], got[:300]
