"""Classic gateway attacks at the HTTP and SSE layers, against a real gateway on loopback: a hostile
upstream's Retry-After, request-smuggling shapes of Content-Length / Transfer-Encoding, bytes
outside ASCII in headers, deeply nested JSON, a client's model name carrying CR/LF and quotes,
and model output that spells SSE framing. Each answer must be in the client API's schema, never a
500, and nothing already accepted may be lost (the ledger row of a refused upstream call)."""

from __future__ import annotations

import json
import socket
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.doubles import Fail, Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

MSG = [{"role": "user", "content": "hello"}]


def raw_http(g: Any, data: bytes) -> bytes:
    """Send `data` on a fresh connection; everything the gateway answers until it closes."""
    host, port = g.url.split("//", 1)[1].rsplit(":", 1)
    out = b""
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
    return out


@pytest.mark.parametrize("retry_after", [float("inf"), 1e300, float("nan"), -5.0])
def test_a_hostile_retry_after_is_still_a_429_in_schema(gateway, openai_up, anthropic_up, retry_after):
    """An upstream's `Retry-After: inf` made the gateway's own Retry-After header overflow: a bare
    500 ("internal error") instead of the upstream's 429, and the request's ledger row was lost."""
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    openai_up.script(Fail(429, retry_after=retry_after))
    with pytest.raises(openai.RateLimitError) as e:
        oai(g).chat.completions.create(model="local", messages=MSG)
    ra = e.value.response.headers.get("retry-after")
    assert ra is None or 0 <= int(ra) <= 86_400, ra
    anthropic_up.script(Fail(429, retry_after=retry_after))
    with pytest.raises(anthropic.RateLimitError) as ae:
        ant(g).messages.create(model="frontier", max_tokens=10, messages=MSG)
    assert ae.value.body["error"]["type"] == "rate_limit_error"
    g.flush()
    rows = g.ledger.query()
    assert sorted(r.status for r in rows) == [429, 429], [(r.status, r.error) for r in rows]


SMUGGLING = {
    "CL and TE together": b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two different CLs": b"Content-Length: {n}\r\nContent-Length: 2\r\n\r\n{body}",
    "TE chunked, identity": b"Transfer-Encoding: chunked, identity\r\n\r\n{body}",
    "CL with a sign": b"Content-Length: +{n}\r\n\r\n{body}",
    "CL a superscript digit": b"Content-Length: \xb2\r\n\r\n{body}",
    "chunk size past 64 bits": b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n{body}",
    "bare LF line ends": None,
}


@pytest.mark.parametrize("shape", list(SMUGGLING))
def test_request_smuggling_shapes_are_refused_whole(gateway, openai_up, anthropic_up, shape):
    """Each ambiguous framing is one 400 in OpenAI's schema and a closed connection: the bytes after it
    (a second request hidden in the body) are never served as a request of their own."""
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    body = json.dumps({"model": "local", "messages": MSG}).encode()
    host = g.url.split("//", 1)[1].encode()
    hidden = b"GET /v1/models HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
    tail = SMUGGLING[shape]
    if tail is None:
        req = (head + b"Content-Length: %d\r\n\r\n" % len(body) + body).replace(b"\r\n", b"\n")
    else:
        req = head + tail.replace(b"{n}", str(len(body)).encode()).replace(b"{body}", body)
    out = raw_http(g, req + hidden)
    assert out.startswith(b"HTTP/1.1 400 "), out[:300]
    assert out.count(b"HTTP/1.1 ") == 1 and b'"object":"list"' not in out  # the hidden request was not served
    assert json.loads(out.split(b"\r\n\r\n", 1)[1])["error"]["type"] == "invalid_request_error"
    assert openai_up.requests == []


def test_header_bytes_outside_ascii_are_not_a_500(gateway, openai_up, anthropic_up, monkeypatch):
    """obs-text (bytes 0x80-0xff) in a key, a forwarded `anthropic-version` and `anthropic-beta`: a
    plain answer or a 401, never a crash; a control byte in a header: the server's 400."""
    monkeypatch.setenv("K", "the-key")
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    cfg["server"]["api_keys_env"] = ["K"]
    g = gateway(cfg)
    body = json.dumps({"model": "frontier", "max_tokens": 10, "messages": MSG}).encode()
    host = g.url.split("//", 1)[1].encode()

    def post(headers: bytes) -> bytes:
        return raw_http(g, b"POST /v1/messages HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
                        + headers + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)

    out = post(b"x-api-key: \xe9\xff-the-key\r\n")
    assert out.startswith(b"HTTP/1.1 401 ") and b'"authentication_error"' in out, out[:300]
    out = post(b"x-api-key: the-key\r\nanthropic-version: 2023-06-01\xe9\xff\r\nanthropic-beta: \xff\xfe\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") or out.startswith(b"HTTP/1.1 400 "), out[:300]
    assert b"Internal" not in out and b"internal error" not in out
    out = post(b"x-api-key: the-key\r\nanthropic-version: 2023\x01\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and b'"invalid_request_error"' in out, out[:300]


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"model":"local","messages":[{"role":"user","content":"x"}],"metadata":' + b'{"a":' * 3000 + b"1" + b"}" * 3001,
    b'{"model":"local","messages":' + b"[" * 60 + b'{"role":"user","content":"x"}' + b"]" * 60 + b"}",
])
def test_deeply_nested_json_is_a_400(gateway, openai_up, anthropic_up, body):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    for path in ("/v1/chat/completions", "/v1/messages", "/v1/responses"):
        r = httpx.post(g.url + path, content=body, headers={"content-type": "application/json"}, timeout=10)
        assert r.status_code == 400, (path, r.status_code, r.text[:300])
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and "Traceback" not in r.text
    assert openai_up.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_name_with_line_breaks_and_quotes_stays_in_the_body(gateway, openai_up, anthropic_up, stream):
    """The `model` a client names is echoed in the answer (a route that catches every name answers it):
    CR/LF, quotes and backslashes in it stay JSON-escaped text, never a header or an SSE line, and the
    upstream request carries the configured model, not the client's text."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    g = gateway(cfg)
    name = 'x\r\nX-Injected: 1\r\n\r\ndata: {"fake": true}\n\n"\\\u2028'
    openai_up.default = Reply(text="fine", model="/srv/models/m.gguf")
    r = httpx.post(g.url + "/v1/chat/completions", json={"model": name, "messages": MSG, "stream": stream}, timeout=10)
    assert r.status_code == 200 and "x-injected" not in r.headers
    if stream:
        events = [line for line in r.text.split("\n\n") if line.strip()]
        assert all(e.startswith("data: ") and "\n" not in e for e in events), events
        chunks = [json.loads(e[6:]) for e in events if e != "data: [DONE]"]
        assert {c["model"] for c in chunks} == {name}
    else:
        assert r.json()["model"] == name
    sent = openai_up.requests[-1]
    assert sent.body["model"] == "qwen-local" and "X-Injected" not in json.dumps(dict(sent.headers))


SSE_LOOKALIKE = 'before\n\ndata: {"choices":[{"delta":{"content":"FORGED"}}]}\n\nevent: error\ndata: {"type":"error"}\r\n\r\nafter'


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
def test_model_output_that_spells_sse_framing_stays_text(gateway, openai_up, anthropic_up, upstream):
    """An answer whose text is SSE framing (a prompt injection can make a model write anything):
    relayed through both APIs, passed through or re-encoded, the client's SDK reads it as text of
    one event stream, with no forged event and nothing dropped."""
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    model = "local" if upstream == "openai" else "frontier"
    (openai_up if upstream == "openai" else anthropic_up).default = Reply(text=SSE_LOOKALIKE)
    text = "".join(c.choices[0].delta.content or "" for c in oai(g).chat.completions.create(
        model=model, messages=MSG, stream=True) if c.choices)
    assert text == SSE_LOOKALIKE
    with ant(g).messages.stream(model=model, max_tokens=100, messages=MSG) as s:
        kinds = {e.type for e in s}
        final = s.get_final_message()
    assert final.content[0].text == SSE_LOOKALIKE and "error" not in kinds
    items = list(oai(g).responses.create(model=model, input="hello", stream=True))
    done = [e for e in items if e.type == "response.output_text.done"]
    assert done and done[0].text == SSE_LOOKALIKE and not [e for e in items if e.type == "error"]
