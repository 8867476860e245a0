"""Bad input gets a 4xx in the schema of the API the client spoke; never a 500."""

from __future__ import annotations

import json

import httpx2 as httpx
import pytest

from tests.doubles import Reply
from tests.harness import two_tier_config


@pytest.fixture
def g(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]})
    cfg["server"] = {"max_body_bytes": 4096}
    anthropic_up.default = Reply(text="ok")
    return gateway(cfg)


def post(g, path, body):
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    return httpx.post(g.url + path, headers={"content-type": "application/json"}, timeout=10, **kw)


def assert_openai_error(r, status):
    assert r.status_code == status, r.text
    e = r.json()["error"]
    assert e["message"] and e["type"]
    assert "Traceback" not in r.text


def assert_anthropic_error(r, status):
    assert r.status_code == status, r.text
    j = r.json()
    assert j["type"] == "error" and j["error"]["type"] and j["error"]["message"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1,2]", b"\xff\xfe", b'"string"'])
def test_malformed_bodies(g, body):
    assert_openai_error(post(g, "/v1/chat/completions", body), 400)
    assert_anthropic_error(post(g, "/v1/messages", body), 400)


@pytest.mark.parametrize("body", [
    {"model": 5, "messages": []},
    {"model": "main", "messages": "hi"},
    {"model": "main", "messages": [{"role": "wizard", "content": "x"}]},
    {"model": "main", "messages": [{"role": "user", "content": 7}]},
    {"model": "main", "messages": [{"role": "user", "content": "x"}], "n": 0},
    {"model": "main", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
    {"model": "main", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "r"}]},
])
def test_openai_wrong_types(g, body):
    assert_openai_error(post(g, "/v1/chat/completions", body), 400)


@pytest.mark.parametrize("body", [
    {"model": "main", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "tool_result",
                                                                                 "tool_use_id": "toolu_x",
                                                                                 "content": "r"}]}]},
    {"model": "main", "messages": [{"role": "user", "content": "x"}]},  # max_tokens missing
    {"model": "main", "max_tokens": "ten", "messages": [{"role": "user", "content": "x"}]},
    {"model": "main", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "bogus"}]}]},
])
def test_anthropic_wrong_types(g, body):
    assert_anthropic_error(post(g, "/v1/messages", body), 400)


def test_an_integer_past_64_bits_is_called_too_large(g):
    """orjson reads 10**30 as a float: the error said "must be an integer, not float"."""
    big = b'{"model":"main","max_tokens":1000000000000000000000000000000,"messages":[{"role":"user","content":"x"}]}'
    for path, check in (("/v1/chat/completions", assert_openai_error), ("/v1/messages", assert_anthropic_error)):
        r = post(g, path, big)
        check(r, 400)
        assert "max_tokens: must be an integer from -2147483647 to 2147483647" in r.text, r.text


@pytest.mark.parametrize("url", ["file:///etc/passwd", "FILE:///proc/self/environ", "gopher://127.0.0.1:6379/_INFO",
                                 "/etc/passwd", "ftp://host/x.png"])
def test_an_image_url_is_http_or_data_only(g, anthropic_up, url):
    """Both APIs take http(s) and data: image URLs only; anything else was forwarded, and a local model
    server that honours file: (or another scheme) would read its own disk for the client."""
    ant_img = {"type": "image", "source": {"type": "url", "url": url}}
    oai_img = {"type": "image_url", "image_url": {"url": url}}
    r = post(g, "/v1/messages", {"model": "main", "max_tokens": 5, "messages": [{"role": "user", "content": [ant_img]}]})
    assert_anthropic_error(r, 400)
    assert "source.url: must be an http(s) URL or a data: URL" in r.text
    r = post(g, "/v1/chat/completions", {"model": "main", "messages": [{"role": "user", "content": [oai_img]}]})
    assert_openai_error(r, 400)
    assert "image_url.url: must be an http(s) URL or a data: URL" in r.text
    r = post(g, "/v1/responses", {"model": "main", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": url}]}]})
    assert_openai_error(r, 400)
    assert anthropic_up.requests == []
    ok = post(g, "/v1/chat/completions", {"model": "main", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "HTTPS://example.com/a.png"}}]}]})
    assert ok.status_code == 200, ok.text


def test_unknown_route(g):
    r = post(g, "/v1/chat/completions", {"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert_openai_error(r, 404)
    assert "nope" in r.json()["error"]["message"]
    r = post(g, "/v1/messages", {"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert_anthropic_error(r, 404)


def test_oversize_body(g):
    big = {"model": "main", "messages": [{"role": "user", "content": "x" * 10000}]}
    assert_openai_error(post(g, "/v1/chat/completions", big), 413)
    big["max_tokens"] = 5
    assert_anthropic_error(post(g, "/v1/messages", big), 413)


def test_unknown_endpoint_and_method(g):
    r = httpx.get(g.url + "/v1/chat/completions")
    assert_openai_error(r, 405)
    r = httpx.post(g.url + "/v1/nothing-here", json={})
    assert_openai_error(r, 404)


def test_gateway_still_serves_after_bad_input(g):
    post(g, "/v1/messages", b"{broken")
    r = post(g, "/v1/messages", {"model": "main", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "ok"



def test_tool_choice_object_of_another_type_is_refused(g):
    # found by schemathesis (seed 15): `{"type": null, "function": {...}}` was taken as a function choice
    body = {"model": "main", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": None, "function": {"name": "f"}}}
    r = post(g, "/v1/chat/completions", body)
    assert_openai_error(r, 400)
    assert "tool_choice.type" in r.json()["error"]["message"]


def test_a_404_for_an_endpoint_that_is_off_says_which_key_turns_it_on(g):
    # Before: "no such endpoint: /dashboard" although the README and docs lead a user there.
    for path, key in (("/dashboard", "observability.dashboard.enabled"),
                      ("/dashboard/api/summary", "observability.dashboard.enabled"),
                      ("/metrics", "observability.metrics.enabled")):
        r = httpx.get(g.url + path)
        assert_openai_error(r, 404)
        assert key in r.json()["error"]["message"]
    r = httpx.get(g.url + "/metricsx")
    assert "observability" not in r.json()["error"]["message"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_gets_a_415_that_says_so(g, encoding):
    """A client that compresses its body (an HTTP library's option) was told its JSON was not valid UTF-8
    ("surrogates not allowed at position 0"); the gateway reads bodies as sent, and now says that."""
    import gzip
    import zlib


    raw = json.dumps({"model": "main", "messages": [{"role": "user", "content": "hi"}]}).encode()
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw) if encoding == "deflate" else b"\x0b\x02\x80" + raw
    for path in ("/v1/chat/completions", "/v1/messages"):
        r = httpx.post(g.url + path, content=body, timeout=10,
                       headers={"content-type": "application/json", "content-encoding": encoding})
        assert r.status_code == 415, r.text
        answer = r.json()
        assert ("type" in answer) == (path == "/v1/messages"), answer  # each API's own error schema
        assert "Content-Encoding" in answer["error"]["message"], answer


@pytest.mark.parametrize(("lines", "says"), [
    (b"transfer-encoding: gzip, chunked\r\n", "Transfer-Encoding"),
    (b"transfer-encoding: deflate, chunked\r\n", "Transfer-Encoding"),
    (b"transfer-encoding: gzip, deflate, chunked\r\n", "Transfer-Encoding"),
    # review28d: two lines of one header are one list (RFC 9110 §5.3), but the check read only the last line
    # (`chunked`, `identity`) and told the client its JSON was not valid
    (b"transfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n", "Transfer-Encoding: gzip, chunked"),
    (b"content-encoding: gzip\r\ncontent-encoding: identity\r\ntransfer-encoding: chunked\r\n",
     "Content-Encoding: gzip, identity"),
])
def test_a_body_with_a_transfer_coding_before_chunked_gets_a_415_that_says_so(g, lines, says):
    """`Transfer-Encoding: gzip, chunked` (a coding the server must undo itself, RFC 9112 §6.1): the gateway
    reads only `chunked`, and told the client its JSON was not valid ("unexpected character"); now it says the
    body must not be compressed, in each API's schema. (Framing is by `chunked` either way: nothing smuggled.)"""
    import gzip
    import socket

    raw = json.dumps({"model": "main", "messages": [{"role": "user", "content": "hi"}]}).encode()
    body = gzip.compress(raw)
    host, port = g.url.removeprefix("http://").split(":")
    for path in (b"/v1/chat/completions", b"/v1/messages"):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n%s"
                      b"connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (path, lines, len(body), body))
            answer = b""
            while piece := s.recv(65536):
                answer += piece
        head, _, text = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 415"), answer[:300]
        err = json.loads(text)
        assert ("type" in err) == (path == b"/v1/messages"), err
        assert says in err["error"]["message"], err
