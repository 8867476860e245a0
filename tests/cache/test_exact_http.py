"""The exact cache through real HTTP: hits, the key's parts, scopes, streams, TTL, bounds, ledger."""

from __future__ import annotations

import asyncio
import threading

import httpx2 as httpx
import openai
import pytest

from tests.cache.helpers import Q, ant_call, cached_config, oai_call
from tests.doubles import Reply, SlowStream, StreamError, ToolCall
from tests.gateway.conftest import ant, oai

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "weather",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
TOOL2 = {"type": "function", "function": {"name": "get_time", "description": "time",
                                          "parameters": {"type": "object", "properties": {}}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object", "properties": {}}}}


def run(g, coro):
    return asyncio.run_coroutine_threadsafe(coro, g.loop).result(10)


def test_repeat_is_a_hit_and_costs_nothing(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    anthropic_up.default = Reply(text="Paris.", usage=(1000, 2000))
    first, h1 = ant_call(ant(g), max_tokens=4096)
    second, h2 = ant_call(ant(g), max_tokens=4096)
    assert (h1, h2) == ("miss", "hit")
    assert len(anthropic_up.requests) == 1
    assert second.content[0].text == first.content[0].text == "Paris."
    assert second.id == first.id  # the very same answer
    g.flush()
    rows = g.ledger.iter_rows("SELECT decision, cost_usd, reference_cost_usd, locality FROM requests "
                              "ORDER BY ts", [])
    assert rows[0]["decision"] == "frontier" and rows[0]["cost_usd"] > 0
    hit = rows[1]
    assert hit["decision"] == "cache" and hit["cost_usd"] == 0 and hit["locality"] == "cache"
    # saved: the reference model's price of the original answer's tokens ($3/M in, $15/M out)
    assert hit["reference_cost_usd"] == pytest.approx(1000 * 3e-6 + 2000 * 15e-6)
    from tierwise.ledger.report import savings
    row = next(r for r in savings(g.ledger) if r.key == "main")
    assert row.savings_usd == pytest.approx(1000 * 3e-6 + 2000 * 15e-6)


def test_hit_is_a_step_in_the_trace(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    oai_call(oai(g))
    raw = oai(g).chat.completions.with_raw_response.create(model="loc", messages=Q, temperature=0)
    assert raw.headers["x-tierwise-cache"] == "hit"
    assert raw.headers["x-tierwise-steps"] == "call:cache:ok"
    g.flush()
    rec = g.ledger.get(raw.headers["x-tierwise-request-id"])
    assert rec.steps[0]["detail"]["cache"] == "exact" and rec.reason.startswith("answered from the cache")


VARIANTS = {
    "tools": {"tools": [TOOL]},
    "other tools": {"tools": [TOOL2]},
    "tool_choice none": {"tools": [TOOL], "tool_choice": "none"},
    "tool_choice required": {"tools": [TOOL], "tool_choice": "required"},
    "response_format json_object": {"response_format": {"type": "json_object"}},
    "response_format json_schema": {"response_format": SCHEMA},
    "system prompt": {"messages": [{"role": "system", "content": "Answer in French."}, *Q]},
    "earlier turn": {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, *Q]},
    "other earlier turn": {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"},
                                        *Q]},
    "max_tokens": {"max_tokens": 7},
    "top_p": {"top_p": 0.5},
    "seed": {"seed": 7},
    "stop": {"stop": ["x"]},
    "model": {"model": "main"},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_requests_differing_in_one_part_never_share(gateway, openai_up, anthropic_up, name):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    if name.startswith("response_format"):  # structured output asked for: the answer must be JSON (wire/strict_output.py)
        openai_up.default = Reply(text='{"ok": true}')
    client = oai(g)
    _, h = oai_call(client)
    assert h == "miss"
    _, h = oai_call(client, **VARIANTS[name])
    assert h == "miss", name
    _, h = oai_call(client, **VARIANTS[name])
    assert h == "hit", name  # the variant has its own entry
    _, h = oai_call(client)
    assert h == "hit"


def test_tool_call_answer_not_served_to_tool_choice_none(gateway, openai_up, anthropic_up):
    # The bug other gateways have: a cached tool-call answer served to `tool_choice: none`.
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    openai_up.script(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]), Reply(text="no tools used"))
    a, _ = oai_call(oai(g), tools=[TOOL])
    assert a.choices[0].message.tool_calls
    b, h = oai_call(oai(g), tools=[TOOL], tool_choice="none")
    assert h == "miss" and b.choices[0].message.content == "no tools used" and not b.choices[0].message.tool_calls


def test_stream_flag_is_part_of_the_key(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    oai_call(oai(g))
    with oai(g).chat.completions.with_streaming_response.create(model="loc", messages=Q, temperature=0,
                                                                 stream=True) as r:
        assert r.headers["x-tierwise-cache"] == "miss"
        list(r.iter_lines())
    assert len(openai_up.requests) == 2


def test_client_format_is_part_of_the_key(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    ant_call(ant(g), model="loc")
    _, h = oai_call(oai(g), model="loc", max_tokens=50)
    assert h == "miss"


def test_scopes_never_share(gateway, openai_up, anthropic_up, monkeypatch):
    monkeypatch.setenv("TW_KEY_A", "key-a-123")
    monkeypatch.setenv("TW_KEY_A2", "key-a2-123")
    monkeypatch.setenv("TW_KEY_B", "key-b-123")
    cfg = cached_config(openai_up.url, anthropic_up.url)
    cfg["server"]["api_keys_env"] = [{"env": "TW_KEY_A", "tenant": "acme"}, {"env": "TW_KEY_A2", "tenant": "acme"},
                                     {"env": "TW_KEY_B", "tenant": "globex"}, "TW_KEY_C"]
    monkeypatch.setenv("TW_KEY_C", "key-c-123")
    g = gateway(cfg)
    assert oai_call(oai(g, api_key="key-a-123"))[1] == "miss"
    assert oai_call(oai(g, api_key="key-b-123"))[1] == "miss"  # another tenant
    assert oai_call(oai(g, api_key="key-c-123"))[1] == "miss"  # a key without tenant is its own scope
    assert oai_call(oai(g, api_key="key-a2-123"))[1] == "hit"  # same tenant, other key
    assert len(openai_up.requests) == 3


def test_sampled_requests_bypass_unless_the_route_opts_in(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    for _ in range(2):
        raw = oai(g).chat.completions.with_raw_response.create(model="loc", messages=Q)  # no temperature
        assert raw.headers["x-tierwise-cache"] == "bypass"
    _, h = oai_call(oai(g), temperature=0.7)
    assert h == "bypass"
    assert len(openai_up.requests) == 3


def test_route_opted_into_sampled_answers(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url, route_cache={"sampled": True}))
    assert oai_call(oai(g), temperature=0.7)[1] == "miss"
    assert oai_call(oai(g), temperature=0.7)[1] == "hit"
    assert oai_call(oai(g), temperature=0.8)[1] == "miss"


def test_route_not_listed_bypasses(gateway, openai_up, anthropic_up):
    cfg = cached_config(openai_up.url, anthropic_up.url)
    del cfg["cache"]["routes"]["loc"]
    g = gateway(cfg)
    assert oai_call(oai(g))[1] == "bypass"
    assert oai_call(oai(g))[1] == "bypass"


def test_cache_off_by_default_changes_nothing(gateway, openai_up, anthropic_up):
    cfg = cached_config(openai_up.url, anthropic_up.url)
    del cfg["cache"]
    g = gateway(cfg)
    raw = oai(g).chat.completions.with_raw_response.create(model="loc", messages=Q, temperature=0)
    oai(g).chat.completions.create(model="loc", messages=Q, temperature=0)
    assert "x-tierwise-cache" not in raw.headers and len(openai_up.requests) == 2


def _raw_stream(g, path: str, body: dict) -> tuple[bytes, dict]:
    headers = {"anthropic-version": "2023-06-01"} if path == "/v1/messages" else {}
    with httpx.stream("POST", g.url + path, json=body, headers=headers, timeout=10) as r:
        return r.read(), dict(r.headers)


@pytest.mark.parametrize("path,model", [("/v1/chat/completions", "loc"), ("/v1/messages", "main"),
                                        ("/v1/chat/completions", "main"), ("/v1/messages", "loc")])
def test_cached_stream_replays_the_same_bytes(gateway, openai_up, anthropic_up, path, model):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    anthropic_up.default = openai_up.default = Reply(text="one two three four five", usage=(10, 5))
    body = {"model": model, "stream": True, "temperature": 0, "max_tokens": 50, "messages": Q,
            "stream_options": {"include_usage": True}} if path != "/v1/messages" else {
        "model": model, "stream": True, "temperature": 0, "max_tokens": 50, "messages": Q}
    a, ha = _raw_stream(g, path, body)
    b, hb = _raw_stream(g, path, body)
    assert (ha["x-tierwise-cache"], hb["x-tierwise-cache"]) == ("miss", "hit")
    ups = openai_up if model == "loc" else anthropic_up
    assert len(ups.requests) == 1
    assert a == b  # same format: the upstream's bytes again; translated: encoded once, replayed as sent


def test_cached_stream_through_the_sdks(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    anthropic_up.default = Reply(text="alpha beta gamma", usage=(10, 3))
    texts = []
    for want in ("miss", "hit"):
        with ant(g).messages.stream(model="main", max_tokens=50, extra_body={"temperature": 0}, messages=Q) as s:
            assert s.response.headers["x-tierwise-cache"] == want
            texts.append("".join(s.text_stream))
            final = s.get_final_message()
        assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3
    otexts = []
    for want in ("miss", "hit"):
        with oai(g).chat.completions.with_streaming_response.create(model="main", messages=Q, temperature=0,
                                                                     stream=True) as r:
            assert r.headers["x-tierwise-cache"] == want
            otexts.append("".join((c.choices[0].delta.content or "") for c in r.parse() if c.choices))
    assert texts == ["alpha beta gamma"] * 2 and otexts == texts
    assert len(anthropic_up.requests) == 2


def test_cancelled_stream_is_not_stored(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    openai_up.script(SlowStream(0.2, then=Reply(text="a b c d e f g h i j")))
    body = {"model": "loc", "stream": True, "temperature": 0, "messages": Q}
    with httpx.stream("POST", g.url + "/v1/chat/completions", json=body, timeout=10) as r:
        assert r.headers["x-tierwise-cache"] == "miss"
        next(r.iter_raw())  # the first bytes, then the client goes away
    assert openai_up.wait_until(lambda: openai_up.disconnects >= 1)
    g.flush()
    _, h = _raw_stream(g, "/v1/chat/completions", body)
    assert h["x-tierwise-cache"] == "miss"
    assert len(openai_up.requests) == 2


def test_failed_stream_is_not_stored(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    release = threading.Event()  # the error comes once the client has read bytes (before them, a fallback)
    anthropic_up.script(StreamError(after_chunks=4, release=release, then=Reply(text="a b c d e f")))
    body = {"model": "main", "stream": True, "temperature": 0, "max_tokens": 50, "messages": Q}
    with httpx.stream("POST", g.url + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"},
                      timeout=10) as r:
        a = b""
        for part in r.iter_raw():
            a += part
            release.set()
    assert b"event: error" in a
    _, h = _raw_stream(g, "/v1/messages", body)
    assert h["x-tierwise-cache"] == "miss" and len(anthropic_up.requests) == 2


def test_failed_answer_is_not_stored(gateway, openai_up, anthropic_up):
    from tests.doubles import Fail

    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    openai_up.script(Fail(400))
    with pytest.raises(openai.BadRequestError):
        oai_call(oai(g))
    assert oai_call(oai(g))[1] == "miss"
    assert oai_call(oai(g))[1] == "hit"


def test_ttl_expiry(gateway, openai_up, anthropic_up, monkeypatch):
    import tierwise.cache.backends as backends

    now = [1000.0]  # the backend's clock, moved by the test (no sleeping, no timing)
    monkeypatch.setattr(backends, "time", type("Clock", (), {"monotonic": staticmethod(lambda: now[0]),
                                                             "time": staticmethod(lambda: now[0])}))
    g = gateway(cached_config(openai_up.url, anthropic_up.url, route_cache={"ttl": 30}))
    assert oai_call(oai(g))[1] == "miss"
    now[0] += 29
    assert oai_call(oai(g))[1] == "hit"
    now[0] += 2
    assert oai_call(oai(g))[1] == "miss"


def test_invalidation_by_route_and_all(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    oai_call(oai(g))
    ant_call(ant(g))
    assert run(g, g.gateway.cache.invalidate(route="loc")) == 1
    assert oai_call(oai(g))[1] == "miss"
    assert ant_call(ant(g))[1] == "hit"
    assert run(g, g.gateway.cache.invalidate()) == 2
    assert ant_call(ant(g))[1] == "miss"


def test_memory_is_bounded(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url, cache={"max_bytes": 6000, "max_entry_bytes": 3000}))
    for i in range(20):
        oai_call(oai(g), messages=[{"role": "user", "content": f"question {i}"}])
    st = run(g, g.gateway.cache.stats())
    assert st["bytes"] <= 6000 and st["evictions"] > 0 and 0 < st["entries"] < 20
    # least recently used went first: the newest is still there, the oldest is not
    assert oai_call(oai(g), messages=[{"role": "user", "content": "question 19"}])[1] == "hit"
    assert oai_call(oai(g), messages=[{"role": "user", "content": "question 0"}])[1] == "miss"


def test_too_large_answer_is_not_stored(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url, cache={"max_entry_bytes": 1024}))
    openai_up.default = Reply(text="word " * 500)
    assert oai_call(oai(g))[1] == "miss"
    assert oai_call(oai(g))[1] == "miss"


def test_unknown_route_in_cache_config_is_a_clear_error(tmp_path):
    from tests.harness import make_config
    from tierwise.errors import ConfigError

    cfg = cached_config("http://127.0.0.1:1", "http://127.0.0.1:2")
    cfg["cache"]["routes"]["nope"] = {}
    with pytest.raises(ConfigError, match="cache.routes.nope"):
        make_config(cfg, tmp_path)
    cfg["cache"]["routes"] = {"main": {"ttl": -1}}
    with pytest.raises(ConfigError, match="cache.routes.main.ttl"):
        make_config(cfg, tmp_path)


def test_incomplete_stream_is_not_stored(gateway, openai_up, anthropic_up):
    from tests.doubles import CutStream

    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    openai_up.script(CutStream(3, then=Reply(text="a b c d e f g h")))
    body = {"model": "loc", "stream": True, "temperature": 0, "messages": Q}
    a, _ = _raw_stream(g, "/v1/chat/completions", body)
    assert b'"error"' in a  # the client saw the stream fail
    _, h = _raw_stream(g, "/v1/chat/completions", body)
    assert h["x-tierwise-cache"] == "miss" and len(openai_up.requests) == 2


def test_a_kept_entry_that_does_not_decode_is_a_miss(gateway, openai_up, anthropic_up, monkeypatch):
    from tierwise.cache import entry as entries

    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    assert oai_call(oai(g))[1] == "miss"

    def broken(v, decode):
        raise ValueError("not an entry")

    monkeypatch.setattr(entries, "unpack", broken)
    answer, how = oai_call(oai(g))  # answered by the upstream again, not a 500
    assert how == "miss" and answer.choices[0].message.content
    assert len(openai_up.requests) == 2
    assert run(g, g.gateway.cache.stats())["errors"] == 1
