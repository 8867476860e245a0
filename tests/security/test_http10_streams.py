"""An HTTP/1.0 client asking for a stream (small26). uvicorn's httptools protocol framed every response without a
length as `transfer-encoding: chunked`, which RFC 9112 forbids toward a 1.0 client (it does not know chunked and
reads the chunk sizes as part of the answer). Now such a response is delimited by closing the connection: no
chunked encoding, the SSE events as they are, then EOF. Raw sockets, since no SDK speaks HTTP/1.0."""

from __future__ import annotations

import json

import pytest

from tests.doubles import Reply
from tests.harness import two_tier_config
from tests.security.test_wire_attacks import raw_http

PATHS = {
    "openai": ("/v1/chat/completions", {"model": "main", "stream": True,
                                        "messages": [{"role": "user", "content": "hi"}]}, b"data: [DONE]"),
    "anthropic": ("/v1/messages", {"model": "main", "stream": True, "max_tokens": 20,
                                   "messages": [{"role": "user", "content": "hi"}]}, b"event: message_stop"),
}


def _request(path: str, body: dict, version: bytes) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST %s %s\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), version, len(data), data))


def _split(raw: bytes) -> tuple[dict[bytes, bytes], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0].split()[1] == b"200", raw[:400]
    return {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}, body


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_stream_to_an_http10_client_is_ended_by_closing_the_connection(gateway, openai_up, anthropic_up, api):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url,
                                routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}}))
    openai_up.script(Reply(text="hello there"))
    path, body, end = PATHS[api]
    headers, payload = _split(raw_http(g, _request(path, body, b"HTTP/1.0")))
    assert b"transfer-encoding" not in headers and b"content-length" not in headers, headers
    assert headers[b"connection"] == b"close"
    assert payload.startswith(b"data: " if api == "openai" else b"event: "), payload[:80]  # no chunk size first
    assert end in payload and b"hello" in payload
    assert payload.rstrip().endswith(b"data: [DONE]" if api == "openai" else b'"type":"message_stop"}'), payload[-80:]


def test_http11_streams_stay_chunked_and_a_whole_answer_to_http10_keeps_its_length(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url,
                                routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}}))
    openai_up.script(Reply(text="hello"), Reply(text="hello"))
    path, body, _ = PATHS["openai"]
    headers, _ = _split(raw_http(g, _request(path, body, b"HTTP/1.1").replace(
        b"Host: 127.0.0.1\r\n", b"Host: 127.0.0.1\r\nConnection: close\r\n")))
    assert headers[b"transfer-encoding"] == b"chunked"
    headers, payload = _split(raw_http(g, _request(path, {**body, "stream": False}, b"HTTP/1.0")))
    assert int(headers[b"content-length"]) == len(payload) and b"transfer-encoding" not in headers
    assert json.loads(payload)["choices"][0]["message"]["content"] == "hello"
