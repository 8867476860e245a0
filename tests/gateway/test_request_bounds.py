"""A hostile client against the request-level bounds: deep JSON, `n`, body bytes in flight, and a
deployment's half-open probe slot handed back on every way a call can end (issue 15, items 4–5)."""

from __future__ import annotations

import asyncio
import socket
import time

import anthropic
import httpx2 as httpx
import pytest

from tests.doubles import Fail, Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config
from tierwise.canonical import Message, Request, TextBlock
from tierwise.errors import UpstreamError


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def post(g, path, body: bytes, **headers):
    h = {"content-type": "application/json", **headers}
    return httpx.post(g.url + path, content=body, headers=h, timeout=20)


def openai_error(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    e = r.json()["error"]
    assert e["message"] and e["type"]
    return e


def anthropic_error(r, status):
    assert r.status_code == status, r.text
    j = r.json()
    assert j["type"] == "error" and j["error"]["message"]
    return j["error"]


def chat_body(fmt: str, nested: bytes) -> bytes:
    if fmt == "openai":
        return (b'{"model":"main","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function",'
                b'"function":{"name":"f","parameters":{"type":"object","x":' + nested + b'}}}]}')
    return (b'{"model":"main","max_tokens":5,"messages":[{"role":"user","content":"hi"}],'
            b'"tools":[{"name":"f","input_schema":{"type":"object","x":' + nested + b"}}]}")


@pytest.fixture
def g(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url + "/v1", anthropic_up.url, local_kind="openai",
                          routes={"main": ["frontier"], "emb": ["local"]})
    cfg["breaker"] = {"failures": 1, "cooldown": 0.2}
    anthropic_up.default = Reply(text="ok")
    openai_up.default = Reply(text="ok")
    return gateway(cfg)


@pytest.mark.parametrize("depth", [300, 1000])
def test_deep_json_is_400_in_the_client_schema_on_every_json_route(g, depth):
    n = deep(depth)
    openai_error(post(g, "/v1/chat/completions", chat_body("openai", n)), 400)
    anthropic_error(post(g, "/v1/messages", chat_body("anthropic", n)), 400)
    anthropic_error(post(g, "/v1/messages/count_tokens", chat_body("anthropic", n)), 400)
    e = openai_error(post(g, "/v1/embeddings", b'{"model":"emb","input":' + n + b"}"), 400)
    assert "deep" in e["message"]


def test_a_body_of_too_many_objects_is_400_in_the_client_schema(g, anthropic_up):
    """Breadth, not depth: a 29 MB body of 800,000 one-word messages held the gateway's event loop (every other
    client's request and stream with it) for 2.6-4.1 s while it was decoded and translated. Past
    `server.limits.max_json_containers` (100,000 objects and arrays) it is refused before any decoding."""
    import openai

    many = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}] * 60_000
    # The SDK's own `post`, not `chat.completions.create`: the same body on the wire and the same error parsing,
    # without the SDK's per-message parameter transform (50 s of a busy CI machine's CPU for 120,000 messages).
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).post("/chat/completions", body={"model": "main", "messages": many}, cast_to=object)
    assert "max_json_containers" in e.value.message
    blocks = [{"type": "text", "text": "a"}] * 120_000
    with pytest.raises(anthropic.BadRequestError) as ae:
        ant(g).messages.create(model="main", max_tokens=5, messages=[{"role": "user", "content": blocks}])
    assert "max_json_containers" in ae.value.message
    with pytest.raises(anthropic.BadRequestError):
        ant(g).messages.count_tokens(model="main", messages=[{"role": "user", "content": blocks}])
    assert not anthropic_up.requests  # nothing reached an upstream


def test_text_full_of_brackets_and_many_messages_under_the_cap_still_pass(g, anthropic_up):
    """The bracket count only sends a body on to the exact count: brackets inside strings are not objects."""
    code = "{[" * 150_000
    r = ant(g).messages.create(model="main", max_tokens=5, messages=[{"role": "user", "content": code}])
    assert r.content[0].text == "ok"
    many = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}] * 20_000 + [
        {"role": "user", "content": "c"}]
    assert ant(g).messages.create(model="main", max_tokens=5, messages=many).content[0].text == "ok"


def test_json_within_the_depth_limit_still_works(g, anthropic_up):
    body = chat_body("anthropic", deep(40))
    r = post(g, "/v1/messages", body)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("stream", [False, True])
def test_a_deep_body_during_half_open_does_not_wedge_the_deployment(g, anthropic_up, stream):
    """The attack: open the breaker, wait for half-open, send a body the upstream encoder refuses."""
    c = ant(g)
    anthropic_up.default = Fail(503)
    with pytest.raises(anthropic.APIStatusError):
        c.messages.create(model="main", max_tokens=5, messages=[{"role": "user", "content": "q"}])
    anthropic_up.default = Reply(text="ok")
    assert g.gateway.deployments["frontier"].breaker.opened_at is not None
    time.sleep(0.25)  # half-open: the next request is the probe
    body = chat_body("anthropic", deep(300))
    if stream:
        body = body[:-1] + b',"stream":true}'
    r = post(g, "/v1/messages", body)
    assert r.status_code == 400, r.text
    # The deployment is still usable, not 503 until restart.
    out = c.messages.create(model="main", max_tokens=5, messages=[{"role": "user", "content": "q"}])
    assert out.content[0].text == "ok"


# ---------------------------------------------------------------------------- the probe slot


def _half_open(dep) -> None:
    dep.breaker.failure()
    dep.breaker.opened_at = time.monotonic() - dep.breaker.cooldown - 1


def _unencodable() -> Request:
    nested: list = []
    for _ in range(400):  # past orjson's encoder depth
        nested = [nested]
    return Request(model="main", messages=[Message(role="user", content=[TextBlock("q")])], max_tokens=5,
                   metadata={"x": nested}, source_format="anthropic",
                   source_body={"model": "main", "max_tokens": 5, "messages": [], "metadata": {"x": nested}})


def _run(g, coro_fn):
    return asyncio.run_coroutine_threadsafe(coro_fn(), g.loop).result(10)


@pytest.mark.parametrize("path", ["complete", "stream"])
def test_probe_slot_comes_back_when_the_body_cannot_be_encoded(g, path):
    dep = g.gateway.deployments["frontier"]
    _half_open(dep)
    ctx = g.gateway.context("main", "rid-enc", "anthropic", "main")

    async def call():
        with pytest.raises(TypeError):  # orjson.JSONEncodeError
            await getattr(dep, path)(_unencodable(), ctx)

    _run(g, call)
    assert dep.breaker.allow(), "the half-open probe slot was never handed back"


@pytest.mark.parametrize("path", ["complete", "stream"])
def test_probe_slot_comes_back_when_the_caller_is_cancelled(g, anthropic_up, path):
    from tests.doubles import Delay

    dep = g.gateway.deployments["frontier"]
    _half_open(dep)
    anthropic_up.script(Delay(5, Reply(text="late")))
    ctx = g.gateway.context("main", "rid-cancel", "anthropic", "main")
    req = Request(model="main", messages=[Message(role="user", content=[TextBlock("q")])], max_tokens=5)

    async def call():
        t = asyncio.ensure_future(getattr(dep, path)(req, ctx))
        await asyncio.sleep(0.3)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    _run(g, call)
    assert dep.breaker.allow()


def test_probe_slot_comes_back_when_a_stream_client_disconnects(g, anthropic_up):
    from tests.doubles import SlowStream

    dep = g.gateway.deployments["frontier"]
    _half_open(dep)
    anthropic_up.script(SlowStream(0.3, Reply(text="a b c d e f g h i j k l m n o p")))
    with socket.create_connection(("127.0.0.1", g.port)) as s:
        body = b'{"model":"main","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"q"}]}'
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                  b"content-length: %d\r\n\r\n%s" % (len(body), body))
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 5
    while dep.breaker.probing and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not dep.breaker.probing


def test_a_forgotten_probe_expires(monkeypatch):
    from tierwise.providers import breaker as b

    now = [100.0]
    br = b.CircuitBreaker(1, 1.0, clock=lambda: now[0])
    br.failure()
    now[0] += 2
    assert br.allow() and not br.allow()
    now[0] += b.PROBE_LEASE_S + 1
    assert br.allow()


# ---------------------------------------------------------------------------- n


def test_n_is_capped_before_any_upstream_call(g, anthropic_up):
    c = oai(g)
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="main", n=20000, messages=[{"role": "user", "content": "q"}])
    assert "max_n" in str(e.value)
    assert anthropic_up.requests == []
    r = c.chat.completions.create(model="main", n=3, messages=[{"role": "user", "content": "q"}])
    assert len(r.choices) == 3 and len(anthropic_up.requests) == 3


def test_n_cap_is_configurable(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]})
    cfg["server"] = {"limits": {"max_n": 2}}
    anthropic_up.default = Reply(text="ok")
    gw = gateway(cfg)
    r = post(gw, "/v1/chat/completions", b'{"model":"main","n":3,"messages":[{"role":"user","content":"q"}]}')
    assert "at most 2" in openai_error(r, 400)["message"]


# ---------------------------------------------------------------------------- body bytes in flight


def test_body_bytes_in_flight_are_bounded_with_retry_after(gateway, openai_up, anthropic_up):
    """Bodies being received hold the budget; a request that would exceed it gets 503 + Retry-After
    in its API's schema, and the budget comes back when the held requests end."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]})
    cfg["server"] = {"max_body_bytes": 100_000, "limits": {"max_body_bytes_in_flight": 250_000}}
    anthropic_up.default = Reply(text="ok")
    gw = gateway(cfg)
    held = []
    for _ in range(2):  # two slow uploads that sent 99 kB of their 100 kB each and stopped
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                  b"content-length: 100000\r\n\r\n{" + b" " * 98_999)
        held.append(s)
    deadline = time.monotonic() + 10
    while gw.app.budget.held < 198_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        body = b'{"model":"main","max_tokens":5,"messages":[{"role":"user","content":"' + b"x" * 60_000 + b'"}]}'
        r = post(gw, "/v1/messages", body)
        err = anthropic_error(r, 503)
        assert err["type"] == "overloaded_error" and "max_body_bytes_in_flight" in err["message"]
        assert r.headers["retry-after"] == "1"
        r = post(gw, "/v1/chat/completions", body.replace(b'"max_tokens":5,', b""))
        openai_error(r, 503)
        assert r.headers["retry-after"]
        small = b'{"model":"main","max_tokens":5,"messages":[{"role":"user","content":"q"}]}'
        assert post(gw, "/v1/messages", small).status_code == 200  # small requests still fit
    finally:
        _close_and_wait_for_release(gw, held)
    assert gw.app.budget.held == 0
    assert post(gw, "/v1/messages", body).status_code == 200


def test_a_body_announced_but_not_sent_holds_no_budget(gateway, openai_up, anthropic_up):
    """The budget bounds bytes held, not bytes promised: headers announcing the largest body, then nothing,
    reserved that much at once, so a few idle connections (eight, at the default limits) refused every
    client's body with 503 for `body_timeout`, again and again, at no cost to the sender."""
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]})
    cfg["server"] = {"max_body_bytes": 100_000, "limits": {"max_body_bytes_in_flight": 250_000}}
    anthropic_up.default = Reply(text="ok")
    gw = gateway(cfg)
    idle = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(5)]
    try:
        for s in idle:
            s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                      b"content-length: 100000\r\n\r\n{")
        deadline = time.monotonic() + 10
        while gw.app.in_flight < 5 and time.monotonic() < deadline:  # every one is waiting for its body
            time.sleep(0.02)
        assert gw.app.in_flight == 5
        body = b'{"model":"main","max_tokens":5,"messages":[{"role":"user","content":"' + b"x" * 90_000 + b'"}]}'
        assert post(gw, "/v1/messages", body).status_code == 200
    finally:
        for s in idle:
            s.close()


def test_one_key_cannot_hold_every_body_byte_in_flight(gateway, openai_up, anthropic_up, monkeypatch):
    """`max_body_bytes_in_flight` is one budget for every client: a key that sent a few large bodies slowly (or
    whose large requests ran long) held all of it, and every other key's requests got 503 for as long as it
    liked. A key now holds at most half the budget (at least one `max_body_bytes`); its next body beyond that
    gets the 503, not another key's."""
    monkeypatch.setenv("TW_BB_A", "sk-gw-body-aaaaaaaaaaaaaaaaaaaa")
    monkeypatch.setenv("TW_BB_B", "sk-gw-body-bbbbbbbbbbbbbbbbbbbb")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]})
    cfg["server"] = {"max_body_bytes": 100_000, "limits": {"max_body_bytes_in_flight": 250_000},
                     "api_keys_env": ["TW_BB_A", "TW_BB_B"]}
    anthropic_up.default = Reply(text="ok")
    gw = gateway(cfg)
    # key B: three slow uploads that sent 80 kB of their 100 kB each and stopped
    held = _stalled_uploads(gw, "sk-gw-body-bbbbbbbbbbbbbbbbbbbb", 3)
    try:
        body = b'{"model":"main","max_tokens":5,"messages":[{"role":"user","content":"' + b"x" * 60_000 + b'"}]}'
        r = post(gw, "/v1/messages", body, **{"x-api-key": "sk-gw-body-aaaaaaaaaaaaaaaaaaaa"})
        assert r.status_code == 200, r.text  # key A's request is served while key B's uploads wait
        r = post(gw, "/v1/messages", body, **{"x-api-key": "sk-gw-body-bbbbbbbbbbbbbbbbbbbb"})
        err = anthropic_error(r, 503)  # key B is past its share
        assert "max_body_bytes_in_flight" in err["message"]
    finally:
        _close_and_wait_for_release(gw, held)
    assert gw.app.budget.held == 0 and not gw.app.budget.by_key


def test_budget_smaller_than_a_body_is_a_config_error(tmp_path):
    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    with pytest.raises(ConfigError, match="max_body_bytes_in_flight"):
        parse_config("server:\n  max_body_bytes: 2000000\n  limits: {max_body_bytes_in_flight: 1000000}\n")


def test_upstream_error_during_probe_still_reopens(g, anthropic_up):
    dep = g.gateway.deployments["frontier"]
    _half_open(dep)
    anthropic_up.script(Fail(500))
    ctx = g.gateway.context("main", "rid-f", "anthropic", "main")
    req = Request(model="main", messages=[Message(role="user", content=[TextBlock("q")])], max_tokens=5)

    async def call():
        with pytest.raises(UpstreamError):
            await dep.complete(req, ctx)

    _run(g, call)
    assert dep.breaker.state == "open"



def test_a_gateway_with_one_client_key_keeps_its_whole_body_budget(gateway, openai_up, anthropic_up, monkeypatch):
    """The per-key share of `max_body_bytes_in_flight` protects one key from another; a gateway with a single client
    key (one user, or one app behind it) has no other key to protect, and its own fourth upload got 503 at half the
    budget (review25b). With one key the whole budget is that key's, as on an open gateway."""
    monkeypatch.setenv("TW_BB_ONE", "sk-gw-body-oneoneoneoneoneoneone")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]})
    cfg["server"] = {"max_body_bytes": 100_000, "limits": {"max_body_bytes_in_flight": 250_000},
                     "api_keys_env": ["TW_BB_ONE"]}
    anthropic_up.default = Reply(text="ok")
    gw = gateway(cfg)
    held = _stalled_uploads(gw, "sk-gw-body-oneoneoneoneoneoneone", 2)  # two slow uploads of the same key
    try:
        body = b'{"model":"main","max_tokens":5,"messages":[{"role":"user","content":"' + b"x" * 60_000 + b'"}]}'
        r = post(gw, "/v1/messages", body, **{"x-api-key": "sk-gw-body-oneoneoneoneoneoneone"})
        assert r.status_code == 200, r.text  # 160 kB + 60 kB is within the 250 kB budget
    finally:
        for s in held:
            s.close()


def _stalled_uploads(gw, key: str, n: int) -> list[socket.socket]:
    """`n` uploads with key `key` that sent 80 kB of their 100 kB each and stopped, once the gateway holds them all."""
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                  b"x-api-key: " + key.encode() + b"\r\ncontent-length: 100000\r\n\r\n{" + b" " * 79_999)
        held.append(s)
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while gw.app.in_flight < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return held


def _close_and_wait_for_release(gw, held: list[socket.socket]) -> None:
    """Close the stalled uploads and give the gateway up to 5 s to hand their body bytes back."""
    for s in held:
        s.close()
    deadline = time.monotonic() + 5
    while gw.app.budget.held and time.monotonic() < deadline:
        time.sleep(0.02)
