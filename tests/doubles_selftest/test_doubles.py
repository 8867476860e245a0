"""The upstream doubles themselves: wire formats as the official SDKs and plain HTTP clients read
them, scripted faults, request validation, disconnect tracking, clean start/stop."""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Iterator

import aiohttp
import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.doubles import (
    AnthropicDouble,
    CutStream,
    Delay,
    Fail,
    Gate,
    OpenAIDouble,
    Reply,
    SlowStream,
    StreamError,
    ToolCall,
    embed,
)

ANT_HEADERS = {"anthropic-version": "2023-06-01"}
MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
def oa() -> Iterator[OpenAIDouble]:
    with OpenAIDouble() as d:
        yield d


@pytest.fixture
def an() -> Iterator[AnthropicDouble]:
    with AnthropicDouble() as d:
        yield d


def oai_client(d: OpenAIDouble) -> openai.OpenAI:
    return d.keep(openai.OpenAI(base_url=d.url + "/v1", api_key="k", max_retries=0))


def ant_client(d: AnthropicDouble, key: str = "k") -> anthropic.Anthropic:
    return d.keep(anthropic.Anthropic(base_url=d.url, api_key=key, max_retries=0))


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


def sse_events(text: str) -> list[str]:
    return [line[7:] for line in text.splitlines() if line.startswith("event: ")]


# ---------------------------------------------------------------- OpenAI


def test_openai_text_usage_and_recording(oa):
    oa.default = Reply(text="Hello there", usage=(11, 4))
    r = oai_client(oa).chat.completions.create(model="m1", messages=MSGS, extra_headers={"X-Custom": "v"})
    assert r.choices[0].message.content == "Hello there" and r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (11, 4, 15)
    assert r.model == "m1" and r.object == "chat.completion"
    rec = oa.requests[-1]
    assert rec.path == "/v1/chat/completions" and rec.method == "POST"
    assert rec.body["messages"] == MSGS and rec.headers["x-custom"] == "v"
    assert rec.headers["authorization"] == "Bearer k" and rec.status == 200


def test_openai_script_order_then_default(oa):
    oa.script(Reply(text="first"), "second", lambda req: Reply(text=req.body["messages"][0]["content"][::-1]))
    oa.default = Reply(text="dflt")
    c = oai_client(oa)
    got = [c.chat.completions.create(model="m", messages=MSGS).choices[0].message.content for _ in range(4)]
    assert got == ["first", "second", "ih", "dflt"] and oa.pending == 0


def test_gate_answers_only_once_released(oa):
    """The request is recorded at once; its answer waits for the test's event (no pause to guess)."""
    release = threading.Event()
    oa.script(Gate(release, then=Reply(text="held")))
    got: list[str] = []
    t = threading.Thread(target=lambda: got.append(
        oai_client(oa).chat.completions.create(model="m", messages=MSGS).choices[0].message.content))
    t.start()
    assert oa.wait_until(lambda: len(oa.requests) == 1, timeout=20)
    t.join(0.2)
    assert t.is_alive() and got == []  # still held (a fast machine too: nothing answers before the set)
    release.set()
    t.join(30)
    assert got == ["held"]


def test_openai_stream_wire_format(oa):
    oa.default = Reply(text="one two three", usage=(5, 3))
    body = {"model": "m", "messages": MSGS, "stream": True, "stream_options": {"include_usage": True}}
    r = httpx.post(oa.url + "/v1/chat/completions", json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    data = sse_data(r.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "one two three"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    # No usage chunk unless asked for.
    r = httpx.post(oa.url + "/v1/chat/completions", json={**body, "stream_options": None})
    assert all("usage" not in json.loads(d) for d in sse_data(r.text)[:-1])


def test_openai_streamed_tool_call_in_fragments(oa):
    oa.default = Reply(tool_calls=[ToolCall("get_weather", {"city": "Bergen", "unit": "C"}, id="call_9")])
    r = httpx.post(oa.url + "/v1/chat/completions", json={"model": "m", "messages": MSGS, "stream": True})
    chunks = [json.loads(d) for d in sse_data(r.text)[:-1]]
    frags = [tc["function"]["arguments"] for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])
             if tc.get("function", {}).get("arguments")]
    assert len(frags) > 1 and json.loads("".join(frags)) == {"city": "Bergen", "unit": "C"}
    # The SDK accumulates the same stream.
    stream = oai_client(oa).chat.completions.create(model="m", messages=MSGS, stream=True)
    name, args, finish, ids = "", "", None, set()
    for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                ids.add(tc.id) if tc.id else None
                name += tc.function.name or ""
                args += tc.function.arguments or ""
            finish = c.finish_reason or finish
    assert (name, json.loads(args), finish, ids) == ("get_weather", {"city": "Bergen", "unit": "C"},
                                                     "tool_calls", {"call_9"})


def test_openai_tool_call_whole_and_n_choices(oa):
    oa.default = Reply(tool_calls=[ToolCall("f", {"x": 1})])
    r = oai_client(oa).chat.completions.create(model="m", messages=MSGS, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    tc = r.choices[1].message.tool_calls[0]
    assert r.choices[1].finish_reason == "tool_calls" and r.choices[1].message.content is None
    assert tc.function.name == "f" and json.loads(tc.function.arguments) == {"x": 1} and tc.id


def test_openai_logprobs_only_when_asked(oa):
    oa.default = Reply(text="yes no", logprobs=True)
    c = oai_client(oa)
    r = c.chat.completions.create(model="m", messages=MSGS, logprobs=True, top_logprobs=2)
    lp = r.choices[0].logprobs.content
    assert [t.token for t in lp] == ["yes", " no"] and len(lp[0].top_logprobs) == 2
    assert c.chat.completions.create(model="m", messages=MSGS).choices[0].logprobs is None
    stream = c.chat.completions.create(model="m", messages=MSGS, logprobs=True, stream=True)
    toks = [t.token for ch in stream for x in ch.choices if x.logprobs for t in x.logprobs.content or []]
    assert toks == ["yes", " no"]


def test_openai_embeddings_float_and_base64(oa):
    e = oai_client(oa).embeddings.create(model="emb", input=["a", "b"])  # the SDK asks for base64
    assert len(e.data) == 2 and e.data[0].embedding == pytest.approx(embed("a", 16))
    assert e.data[0].embedding != e.data[1].embedding
    assert oa.requests[-1].body["encoding_format"] == "base64"
    r = httpx.post(oa.url + "/v1/embeddings", json={"model": "emb", "input": "a", "dimensions": 4}).json()
    assert r["object"] == "list" and r["data"][0]["embedding"] == pytest.approx(embed("a", 4))
    r = httpx.post(oa.url + "/v1/embeddings", json={"model": "emb", "input": [], "encoding_format": "base64"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    raw = httpx.post(oa.url + "/v1/embeddings",
                     json={"model": "emb", "input": "z", "encoding_format": "base64"}).json()["data"][0]["embedding"]
    assert list(struct.unpack("<16f", base64.b64decode(raw))) == embed("z", 16)


def test_openai_models_and_unknown_path(oa):
    assert [m.id for m in oai_client(oa).models.list()] == ["double-model"]
    r = httpx.post(oa.url + "/v1/nothing", json={})
    assert r.status_code == 404 and r.json()["error"]["message"]


@pytest.mark.parametrize("body", [b"{nope", b"[]", json.dumps({"messages": MSGS}).encode(),
                                  json.dumps({"model": "m", "messages": []}).encode(),
                                  json.dumps({"model": "m", "messages": [{"role": "wizard"}]}).encode(),
                                  json.dumps({"model": "m", "messages": MSGS, "n": 0}).encode()])
def test_openai_rejects_bad_requests_without_consuming_script(oa, body):
    oa.script(Reply(text="kept"))
    r = httpx.post(oa.url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"] and "param" in err and "code" in err
    assert oa.pending == 1 and oa.requests[-1].status == 400


def test_api_key_enforced_when_set():
    with OpenAIDouble(api_key="sekret") as d:
        with pytest.raises(openai.AuthenticationError):
            oai_client(d).chat.completions.create(model="m", messages=MSGS)
        ok = d.keep(openai.OpenAI(base_url=d.url + "/v1", api_key="sekret", max_retries=0))
        assert ok.chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "ok"
    with AnthropicDouble(api_key="sekret") as d:
        with pytest.raises(anthropic.AuthenticationError) as e:
            ant_client(d, "wrong").messages.create(model="m", max_tokens=5, messages=MSGS)
        assert e.value.body["error"]["type"] == "authentication_error"
        assert ant_client(d, "sekret").messages.create(model="m", max_tokens=5, messages=MSGS).content[0].text == "ok"


# ---------------------------------------------------------------- Anthropic


def test_anthropic_text_and_usage(an):
    an.default = Reply(text="Bonjour", usage=(7, 2))
    r = ant_client(an).messages.create(model="c1", max_tokens=10, system="be brief", messages=MSGS)
    assert r.content[0].type == "text" and r.content[0].text == "Bonjour" and r.stop_reason == "end_turn"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (7, 2) and r.model == "c1"
    rec = an.requests[-1]
    assert rec.body["system"] == "be brief"
    assert rec.headers.get("x-api-key") == "k" or rec.headers.get("authorization") == "Bearer k"
    assert rec.headers["anthropic-version"]


def test_anthropic_stream_event_sequence(an):
    an.default = Reply(text="alpha beta gamma", usage=(5, 3))
    body = {"model": "c", "max_tokens": 10, "messages": MSGS, "stream": True}
    r = httpx.post(an.url + "/v1/messages", json=body, headers=ANT_HEADERS)
    kinds = sse_events(r.text)
    assert kinds == ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
                     "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    data = [json.loads(d) for d in sse_data(r.text)]
    assert [d["type"] for d in data] == kinds  # each event's name matches its data's type
    assert data[0]["message"]["usage"]["input_tokens"] == 5
    assert data[-2]["delta"]["stop_reason"] == "end_turn" and data[-2]["usage"]["output_tokens"] == 3
    with ant_client(an).messages.stream(model="c", max_tokens=10, messages=MSGS) as s:
        final = s.get_final_message()
    assert final.content[0].text == "alpha beta gamma" and final.usage.output_tokens == 3


def test_anthropic_tool_use_whole_and_streamed(an):
    call = ToolCall("get_weather", {"city": "Oslo", "days": 3}, id="toolu_1")
    an.script(Reply(text="Let me check.", tool_calls=[call]), Reply(tool_calls=[call]))
    r = ant_client(an).messages.create(model="c", max_tokens=50, messages=MSGS)
    assert r.stop_reason == "tool_use" and [b.type for b in r.content] == ["text", "tool_use"]
    assert r.content[1].input == {"city": "Oslo", "days": 3} and r.content[1].id == "toolu_1"
    raw = httpx.post(an.url + "/v1/messages", headers=ANT_HEADERS,
                     json={"model": "c", "max_tokens": 50, "messages": MSGS, "stream": True}).text
    parts = [d["delta"]["partial_json"] for d in map(json.loads, sse_data(raw))
             if d["type"] == "content_block_delta"]
    assert len([p for p in parts if p]) > 1 and json.loads("".join(parts)) == {"city": "Oslo", "days": 3}
    an.default = Reply(tool_calls=[call])
    with ant_client(an).messages.stream(model="c", max_tokens=50, messages=MSGS) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"city": "Oslo", "days": 3}


def test_anthropic_thinking_block(an):
    an.default = Reply(text="4", thinking="2 plus 2", signature="sig123")
    with ant_client(an).messages.stream(model="c", max_tokens=2000, messages=MSGS,
                                        thinking={"type": "enabled", "budget_tokens": 1024}) as s:
        final = s.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].thinking == "2 plus 2"
    assert final.content[0].signature == "sig123" and final.content[1].text == "4"


@pytest.mark.parametrize(("body", "headers", "needle"), [
    ({"model": "c", "messages": MSGS}, ANT_HEADERS, "max_tokens"),
    ({"model": "c", "max_tokens": "ten", "messages": MSGS}, ANT_HEADERS, "max_tokens"),
    ({"max_tokens": 5, "messages": MSGS}, ANT_HEADERS, "model"),
    ({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "bogus"}]}]},
     ANT_HEADERS, "bogus"),
    ({"model": "c", "max_tokens": 5, "messages": MSGS}, {}, "anthropic-version"),
])
def test_anthropic_rejects_like_the_real_api(an, body, headers, needle):
    r = httpx.post(an.url + "/v1/messages", json=body, headers=headers)
    assert r.status_code == 400
    j = r.json()
    assert j["type"] == "error" and j["error"]["type"] == "invalid_request_error"
    assert needle in j["error"]["message"]


def test_anthropic_count_tokens_and_models(an):
    c = ant_client(an)
    small = c.messages.count_tokens(model="c", messages=MSGS).input_tokens
    big = c.messages.count_tokens(model="c", messages=[{"role": "user", "content": "hello " * 100}]).input_tokens
    assert 0 < small < big and an.requests[-1].path == "/v1/messages/count_tokens"
    assert "max_tokens" not in an.requests[-1].body
    assert [m.id for m in c.models.list()] == ["claude-double-1"]


# ---------------------------------------------------------------- faults


def test_fail_in_both_schemas_with_retry_after(oa, an):
    oa.script(Fail(429, "slow down", retry_after=2))
    r = httpx.post(oa.url + "/v1/chat/completions", json={"model": "m", "messages": MSGS})
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json()["error"]["message"] == "slow down" and r.json()["error"]["code"] == "rate_limit_exceeded"
    an.script(Fail(529), Fail(500, "boom"))
    with pytest.raises(anthropic.APIStatusError) as e:
        ant_client(an).messages.create(model="c", max_tokens=5, messages=MSGS)
    assert e.value.status_code == 529 and e.value.body["error"]["type"] == "overloaded_error"
    r = httpx.post(an.url + "/v1/messages", headers=ANT_HEADERS, json={"model": "c", "max_tokens": 5,
                                                                       "messages": MSGS})
    assert r.status_code == 500 and r.json()["error"] == {"type": "api_error", "message": "boom"}
    assert "retry-after" not in r.headers


def test_cut_before_first_byte(oa, an):
    oa.script(CutStream(after_chunks=0))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(oa.url + "/v1/chat/completions", json={"model": "m", "messages": MSGS, "stream": True})
    an.script(Delay(0.01, then=CutStream(0)))
    with pytest.raises(anthropic.APIConnectionError):
        ant_client(an).messages.create(model="c", max_tokens=5, messages=MSGS)
    assert oa.cuts == 1 and an.cuts == 1 and oa.disconnects == 0
    # The server is fine afterwards.
    assert oai_client(oa).chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "ok"


def test_cut_mid_stream_after_n_events(an):
    an.script(CutStream(after_chunks=4, then=Reply(text="a b c d e f")))
    seen: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):  # noqa: PT012
        with httpx.stream("POST", an.url + "/v1/messages", headers=ANT_HEADERS,
                          json={"model": "c", "max_tokens": 5, "messages": MSGS, "stream": True}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("event: "):
                    seen.append(line[7:])
    assert seen == ["message_start", "content_block_start", "ping", "content_block_delta"]


def test_cut_whole_body_short(oa):
    oa.script(CutStream(after_chunks=1, then=Reply(text="some longer answer here")))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(oa.url + "/v1/chat/completions", json={"model": "m", "messages": MSGS})


def test_slow_stream_delivers_everything(oa, an):
    oa.default = SlowStream(interval=0.01, then=Reply(text="s l o w"))
    stream = oai_client(oa).chat.completions.create(model="m", messages=MSGS, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "s l o w"
    an.default = SlowStream(0.01, then=Reply(text="x y"))
    assert ant_client(an).messages.create(model="c", max_tokens=5, messages=MSGS).content[0].text == "x y"


def test_stream_error_event(an, oa):
    an.script(StreamError(after_chunks=3, then=Reply(text="a b c d")))
    with pytest.raises(anthropic.APIStatusError) as e:  # noqa: PT012
        with ant_client(an).messages.stream(model="c", max_tokens=5, messages=MSGS) as s:
            for _ in s:
                pass
    assert "Overloaded" in str(e.value)
    oa.script(StreamError(after_chunks=2, msg="broke"))
    text = httpx.post(oa.url + "/v1/chat/completions", json={"model": "m", "messages": MSGS, "stream": True}).text
    assert json.loads(sse_data(text)[-1])["error"]["message"] == "broke"


def test_client_timeout_during_delay_counts_a_disconnect(an):
    an.script(Delay(30, then=Reply(text="late")))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(an.url + "/v1/messages", headers=ANT_HEADERS, timeout=0.3,
                   json={"model": "c", "max_tokens": 5, "messages": MSGS})
    assert an.wait_until(lambda: an.disconnects == 1)
    assert an.wait_until(lambda: an.active == 0)


async def test_client_leaving_mid_stream_counts_a_disconnect():
    async with OpenAIDouble() as d:
        d.default = SlowStream(0.2, then=Reply(text=" ".join(["w"] * 50)))
        async with aiohttp.ClientSession() as s:
            async with s.post(d.url + "/v1/chat/completions",
                              json={"model": "m", "messages": MSGS, "stream": True}) as r:
                await r.content.readline()  # the first event arrived; now hang up
        assert d.wait_until(lambda: d.disconnects == 1)
        assert d.requests[-1].body["stream"] is True


def test_stop_is_clean_with_a_request_in_flight():
    before = threading.active_count()
    d = AnthropicDouble().start()
    d.default = Delay(60)
    def call() -> None:
        try:
            httpx.post(d.url + "/v1/messages", headers=ANT_HEADERS, timeout=70,
                       json={"model": "c", "max_tokens": 5, "messages": MSGS})
        except httpx.HTTPError:
            pass

    t = threading.Thread(target=call, daemon=True)
    t.start()
    assert d.wait_until(lambda: d.active == 1)
    d.stop()
    t.join(10)
    assert not t.is_alive() and threading.active_count() == before
    d.stop()  # a second stop is harmless


def test_tool_result_pairing_checked_like_the_real_apis(oa, an):
    orphan_ant = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}]}]
    r = httpx.post(an.url + "/v1/messages", headers=ANT_HEADERS,
                   json={"model": "c", "max_tokens": 5, "messages": orphan_ant})
    assert r.status_code == 400 and "toolu_x" in r.json()["error"]["message"]
    paired = [{"role": "user", "content": "q"},
              {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_x", "name": "f", "input": {}}]},
              *orphan_ant]
    r = httpx.post(an.url + "/v1/messages", headers=ANT_HEADERS, json={"model": "c", "max_tokens": 5,
                                                                       "messages": paired})
    assert r.status_code == 200
    unanswered = paired[:2] + [{"role": "user", "content": "and?"}]
    r = httpx.post(an.url + "/v1/messages", headers=ANT_HEADERS, json={"model": "c", "max_tokens": 5,
                                                                       "messages": unanswered})
    assert r.status_code == 400 and "tool_result" in r.json()["error"]["message"]

    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ok = [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [call]},
          {"role": "tool", "tool_call_id": "call_1", "content": "r"}]
    assert httpx.post(oa.url + "/v1/chat/completions", json={"model": "m", "messages": ok}).status_code == 200
    for bad in ([ok[0], ok[2]], ok[:2] + [{"role": "user", "content": "next"}]):
        r = httpx.post(oa.url + "/v1/chat/completions", json={"model": "m", "messages": bad})
        assert r.status_code == 400 and "tool" in r.json()["error"]["message"]
    with OpenAIDouble(strict=False) as lax:  # llama.cpp-like servers let it through
        assert httpx.post(lax.url + "/v1/chat/completions",
                          json={"model": "m", "messages": [ok[0], ok[2]]}).status_code == 200
        assert lax.last is not None and lax.last.status == 200
