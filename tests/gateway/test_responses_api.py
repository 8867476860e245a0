"""The OpenAI Responses API (`POST /v1/responses`) through a real gateway, with the official `openai`
SDK's `client.responses` as the client and OpenAI-format and Anthropic-format upstream doubles."""

from __future__ import annotations

import json
import threading

import openai
import pytest

from tests.doubles import Reply, StreamError, ToolCall
from tests.gateway.conftest import oai

WEATHER = {
    "type": "function", "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(params=["openai", "anthropic"])
def upstream_kind(request):
    return request.param


def _config(kind: str, url: str, **server) -> dict:
    return {
        "server": server,
        "ledger": {"path": "ledger.db"},
        "providers": {"up": {"kind": kind, "base_url": url + "/v1" if kind == "openai" else url}},
        "models": {"m": {"provider": "up", "model": "upstream-model"}},
        "routes": {"main": ["m"]},
    }


@pytest.fixture
def setup(gateway, openai_up, anthropic_up, upstream_kind):
    up = openai_up if upstream_kind == "openai" else anthropic_up
    return gateway(_config(upstream_kind, up.url)), up


def _upstream_messages(up) -> list:
    return up.requests[-1].body["messages"]


def test_text_input_and_instructions(setup, upstream_kind):
    g, up = setup
    up.default = Reply(text="Hello from upstream", usage=(11, 4))
    r = oai(g).responses.create(model="main", input="hi", instructions="be brief", max_output_tokens=50,
                                temperature=0.5)
    assert r.object == "response" and r.status == "completed" and r.id.startswith("resp_")
    assert r.output_text == "Hello from upstream"
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.usage.input_tokens == 11 and r.usage.output_tokens == 4 and r.usage.total_tokens == 15
    assert r.instructions == "be brief" and r.max_output_tokens == 50
    body = up.requests[-1].body
    assert body["model"] == "upstream-model" and body["max_tokens"] == 50 and body["temperature"] == 0.5
    if upstream_kind == "openai":
        assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    else:
        assert body["system"] in ("be brief", [{"type": "text", "text": "be brief"}])
        assert body["messages"][0]["role"] == "user"
    g.flush()
    row = g.ledger.query()[-1]
    assert row.client_format == "responses" and row.status == 200 and row.route == "main"


def test_item_list_input_with_images_and_history(setup, upstream_kind):
    g, up = setup
    up.default = Reply(text="a cat")
    r = oai(g).responses.create(model="main", input=[
        {"role": "developer", "content": "answer in two words"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
        {"role": "user", "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}]},
    ])
    assert r.output_text == "a cat"
    msgs = _upstream_messages(up)
    roles = [m["role"] for m in msgs]
    if upstream_kind == "openai":
        assert roles == ["system", "user", "assistant", "user"]
        assert msgs[0]["content"] == "answer in two words"
        assert msgs[3]["content"][1]["type"] == "image_url"
    else:
        assert roles == ["user", "assistant", "user"]
        assert any(b.get("type") == "image" for b in msgs[2]["content"])


def test_function_tools_round_trip(setup, upstream_kind):
    g, up = setup
    client = oai(g)
    up.script(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_w1")]))
    r = client.responses.create(model="main", input="weather in Paris?", tools=[WEATHER], tool_choice="required",
                                parallel_tool_calls=False)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    call_id = calls[0].call_id
    sent = up.requests[-1].body
    if upstream_kind == "openai":
        assert sent["tools"][0]["function"]["name"] == "get_weather"
        assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    else:
        assert sent["tools"][0]["name"] == "get_weather"
        assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    up.script(Reply(text="It is sunny in Paris."))
    r2 = client.responses.create(model="main", tools=[WEATHER], input=[
        {"role": "user", "content": "weather in Paris?"},
        *[o.model_dump(exclude_none=True) for o in r.output],
        {"type": "function_call_output", "call_id": call_id, "output": "sunny, 21C"},
    ])
    assert r2.output_text == "It is sunny in Paris."
    msgs = _upstream_messages(up)
    if upstream_kind == "openai":
        assert msgs[1]["tool_calls"][0]["id"] == call_id
        assert msgs[2] == {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21C"}
    else:
        assert msgs[1]["content"][-1]["type"] == "tool_use"
        result = msgs[2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == msgs[1]["content"][-1]["id"]


def test_stream_text_event_sequence(setup):
    g, up = setup
    up.default = Reply(text="one two three", usage=(5, 3))
    types, deltas, final = [], [], None
    seqs = []
    with oai(g).responses.create(model="main", input="count", stream=True) as stream:
        for ev in stream:
            types.append(ev.type)
            seqs.append(ev.sequence_number)
            if ev.type == "response.output_text.delta":
                deltas.append(ev.delta)
            if ev.type == "response.completed":
                final = ev.response
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert seqs == list(range(len(seqs)))
    assert len(deltas) >= 2 and "".join(deltas) == "one two three"
    assert final is not None and final.output_text == "one two three" and final.status == "completed"
    assert final.usage.input_tokens == 5 and final.usage.output_tokens == 3


def test_stream_function_call_and_helper(setup):
    g, up = setup
    up.default = Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})])
    with oai(g).responses.stream(model="main", input="weather in Oslo?", tools=[WEATHER]) as stream:
        types = [ev.type for ev in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in types
    assert types.index("response.function_call_arguments.done") < types.index("response.output_item.done")
    call = final.output[-1]
    assert call.type == "function_call" and call.status == "completed"
    assert json.loads(call.arguments) == {"city": "Oslo"}


def test_stream_error_mid_stream_is_response_failed(setup):
    g, up = setup
    release = threading.Event()  # the error comes once the client has read text (before it, a plain HTTP error)
    up.script(StreamError(after_chunks=4, release=release, then=Reply(text="a b c d e f g h")))
    events = []
    with oai(g).responses.create(model="main", input="x", stream=True) as stream:
        for e in stream:
            events.append(e)
            if e.type == "response.output_text.delta":
                release.set()
    kinds = [e.type for e in events]
    assert "error" in kinds and kinds[-1] == "response.failed"
    assert events[-1].response.status == "failed" and events[-1].response.error.message


def test_previous_response_id_continues_a_stored_conversation(setup, upstream_kind):
    g, up = setup
    client = oai(g)
    up.script(Reply(text="Nice to meet you, Ada."))
    r1 = client.responses.create(model="main", input="My name is Ada.", instructions="first instructions")
    up.script(Reply(text="Your name is Ada."))
    r2 = client.responses.create(model="main", input="What is my name?", previous_response_id=r1.id)
    assert r2.previous_response_id == r1.id and r2.output_text == "Your name is Ada."
    msgs = _upstream_messages(up)
    texts = [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in msgs
             if m["role"] != "system"]
    assert texts == ["My name is Ada.", "Nice to meet you, Ada.", "What is my name?"]
    # instructions are not carried over to the next turn
    assert "first instructions" not in json.dumps(up.requests[-1].body)
    # a streamed answer is stored too, and chains further
    up.script(Reply(text="Still Ada."))
    with client.responses.create(model="main", input="And now?", previous_response_id=r2.id, stream=True) as s:
        r3 = [e for e in s if e.type == "response.completed"][0].response
    up.script(Reply(text="ok"))
    client.responses.create(model="main", input="last", previous_response_id=r3.id)
    assert len([m for m in _upstream_messages(up) if m["role"] == "user"]) == 4


def test_store_false_is_not_kept(setup):
    g, up = setup
    client = oai(g)
    r = client.responses.create(model="main", input="hi", store=False)
    assert r.store is False
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="main", input="again", previous_response_id=r.id)
    assert e.value.body["code"] == "previous_response_not_found"
    assert e.value.body["param"] == "previous_response_id"


def test_stored_responses_are_per_key(gateway, openai_up, monkeypatch):
    monkeypatch.setenv("TW_KEY_A", "key-a")
    monkeypatch.setenv("TW_KEY_B", "key-b")
    g = gateway(_config("openai", openai_up.url, api_keys_env=["TW_KEY_A", "TW_KEY_B"]))
    r = oai(g, api_key="key-a").responses.create(model="main", input="secret plan")
    sent = len(openai_up.requests)
    with pytest.raises(openai.BadRequestError) as e:
        oai(g, api_key="key-b").responses.create(model="main", input="tell me", previous_response_id=r.id)
    assert e.value.body["code"] == "previous_response_not_found"
    assert len(openai_up.requests) == sent  # refused before any upstream call
    ok = oai(g, api_key="key-a").responses.create(model="main", input="go on", previous_response_id=r.id)
    assert ok.status == "completed"
    with pytest.raises(openai.AuthenticationError):
        oai(g, api_key="wrong").responses.create(model="main", input="x")


def test_store_bounds_evict_oldest(gateway, openai_up):
    cfg = _config("openai", openai_up.url)
    cfg["server"]["responses"] = {"max_count": 2}
    g = gateway(cfg)
    client = oai(g)
    ids = [client.responses.create(model="main", input=f"turn {i}").id for i in range(3)]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="main", input="x", previous_response_id=ids[0])
    assert client.responses.create(model="main", input="x", previous_response_id=ids[2]).status == "completed"


def test_one_key_filling_the_store_evicts_its_own_responses_not_another_keys(gateway, openai_up, monkeypatch):
    """The store's count and byte bounds are shared by every key: a client that stores response after
    response (a loop of `responses.create`) must push out its own oldest, not another client's conversation."""
    monkeypatch.setenv("TW_KEY_A", "key-a")
    monkeypatch.setenv("TW_KEY_B", "key-b")
    cfg = _config("openai", openai_up.url, api_keys_env=["TW_KEY_A", "TW_KEY_B"])
    cfg["server"]["responses"] = {"max_count": 4, "max_bytes": 4000}
    g = gateway(cfg)
    victim, attacker = oai(g, api_key="key-a"), oai(g, api_key="key-b")
    kept = victim.responses.create(model="main", input="my conversation")
    mine = [attacker.responses.create(model="main", input=f"filler {i}").id for i in range(6)]
    mine += [attacker.responses.create(model="main", input="y" * 900).id for _ in range(6)]  # the byte bound
    assert victim.responses.create(model="main", input="go on", previous_response_id=kept.id).status == "completed"
    with pytest.raises(openai.BadRequestError) as e:  # the attacker's own oldest went
        attacker.responses.create(model="main", input="x", previous_response_id=mine[0])
    assert e.value.body["code"] == "previous_response_not_found"
    assert attacker.responses.create(model="main", input="x", previous_response_id=mine[-1]).status == "completed"


def test_json_schema_and_reasoning_effort(setup, upstream_kind):
    g, up = setup
    up.default = Reply(text='{"city": "Rome"}')
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    r = oai(g).responses.create(model="main", input="a city", max_output_tokens=20000,
                                text={"format": {"type": "json_schema", "name": "city", "schema": schema,
                                                 "strict": True}},
                                reasoning={"effort": "low"})
    assert json.loads(r.output_text) == {"city": "Rome"}
    body = up.requests[-1].body
    if upstream_kind == "openai":
        assert body["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "city", "schema": schema, "strict": True}}
        assert body["reasoning_effort"] == "low"
    else:
        assert "JSON Schema" in json.dumps(body["system"])
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_reasoning_items_carry_thinking_and_signature(gateway, anthropic_up):
    g = gateway(_config("anthropic", anthropic_up.url))
    client = oai(g)
    anthropic_up.script(Reply(text="42", thinking="six times seven", signature="sig-abc"))
    r = client.responses.create(model="main", input="6*7?", reasoning={"effort": "medium"}, max_output_tokens=8000)
    reasoning = r.output[0]
    assert reasoning.type == "reasoning" and reasoning.content[0].text == "six times seven"
    assert reasoning.encrypted_content == "sig-abc"
    # passed back as input, the thinking block reaches Anthropic again with its signature
    anthropic_up.script(Reply(text="yes"))
    client.responses.create(model="main", reasoning={"effort": "medium"}, max_output_tokens=8000, input=[
        {"role": "user", "content": "6*7?"}, *[o.model_dump(exclude_none=True) for o in r.output],
        {"role": "user", "content": "sure?"}])
    assistant = anthropic_up.requests[-1].body["messages"][1]
    assert assistant["content"][0] == {"type": "thinking", "thinking": "six times seven", "signature": "sig-abc"}
    # streamed: reasoning_text events, then the text
    anthropic_up.script(Reply(text="42", thinking="six times seven", signature="sig-abc"))
    with client.responses.create(model="main", input="6*7?", stream=True, reasoning={"effort": "medium"},
                                 max_output_tokens=8000) as s:
        events = list(s)
    kinds = [e.type for e in events]
    assert "response.reasoning_text.delta" in kinds
    final = events[-1].response
    assert final.output[0].encrypted_content == "sig-abc" and final.output_text == "42"


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("body, fragment", [
    ({"input": "hi"}, "model"),
    ({"model": "main"}, "input"),
    ({"model": "main", "input": 5}, "input"),
    ({"model": "main", "input": [{"type": "bogus"}]}, "input[0].type"),
    ({"model": "main", "input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
     "input[0].call_id"),
    ({"model": "main", "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "main", "input": "hi", "temperature": 3}, "temperature"),
    ({"model": "main", "input": "hi", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "main", "input": "hi", "text": {"format": {"type": "json_schema"}}}, "text.format.schema"),
    ({"model": "main", "input": "hi", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"model": "main", "input": "hi", "background": True}, "background"),
    ({"model": "main", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0].type"),
])
def test_bad_input_is_an_openai_400(setup, body, fragment):
    g, _ = setup
    client = oai(g)
    with pytest.raises(openai.BadRequestError) as e:
        client.post("/responses", body=body, cast_to=object)
    err = e.value.body
    assert e.value.status_code == 400
    assert err["type"] == "invalid_request_error" and fragment in err["message"]
    assert set(err) == {"message", "type", "param", "code"}


def _http(method: str, url: str, body: bytes | None = None) -> tuple[int, dict, dict]:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, data=body, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_not_json_and_unknown_route_errors(setup):
    g, _ = setup
    status, _, body = _http("POST", g.url + "/v1/responses", b"{nope")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, _, body = _http("POST", g.url + "/v1/responses", json.dumps({"model": "nothing-here", "input": "x"}).encode())
    assert status == 404 and "error" in body
    status, headers, body = _http("GET", g.url + "/v1/responses")
    assert status == 405 and headers["allow"] == "POST" and "error" in body


@pytest.mark.parametrize("max_output, thinking", [
    (100, None), (5000, {"type": "enabled", "budget_tokens": 2500}), (40000, {"type": "enabled", "budget_tokens": 16384}),
])
def test_reasoning_effort_budget_fits_max_output_tokens(gateway, anthropic_up, max_output, thinking):
    # Anthropic needs 1024 <= budget_tokens < max_tokens: the budget derived from the effort yields
    # to the client's max_output_tokens instead of earning the client a 400.
    g = gateway(_config("anthropic", anthropic_up.url))
    r = oai(g).responses.create(model="main", input="think", reasoning={"effort": "high"},
                                max_output_tokens=max_output)
    assert r.status == "completed"
    body = anthropic_up.requests[-1].body
    assert body["max_tokens"] == max_output and body.get("thinking") == thinking


# ---------------------------------------------------------------------------- route policies


def test_route_policies_serve_responses(gateway, openai_up, anthropic_up):
    from tests.doubles import Fail
    from tests.harness import two_tier_config
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0},
        "split": {"policy": "rules", "rules": [{"name": "tool-users", "match": {"tools": True}, "target": "frontier"},
                                               {"name": "thinkers", "match": {"thinking": True}, "target": "frontier"}],
                  "default": "local"},
        "checked": {"policy": "cascade", "tiers": ["local", "frontier"],
                    "verifiers": [{"type": "arithmetic", "min_equations": 1}]},
    })
    g = gateway(cfg)
    client = oai(g)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    # fallback: the local server fails, the frontier answers the stream
    openai_up.script(Fail(500, "boom"))
    with client.responses.create(model="main", input="hi", stream=True) as s:
        events = list(s)
    assert events[-1].type == "response.completed" and events[-1].response.output_text == "frontier answer"
    openai_up.script(Fail(500, "boom"))
    r = client.responses.with_raw_response.create(model="main", input="hi")
    assert r.parse().output_text == "frontier answer" and r.headers["x-tierwise-route"] == "main"
    assert "call:local:fail" in r.headers["x-tierwise-steps"] and "call:frontier:ok" in r.headers["x-tierwise-steps"]
    # rules see the canonical request: tools and reasoning effort decide the tier
    assert client.responses.create(model="split", input="hi").output_text == "local answer"
    assert client.responses.create(model="split", input="hi", tools=[WEATHER]).output_text == "frontier answer"
    assert client.responses.create(model="split", input="hi",
                                   reasoning={"effort": "high"}).output_text == "frontier answer"
    # cascade: a failing local answer escalates; streamed, the client gets the verified answer
    openai_up.script(Reply(text="not sure"))
    anthropic_up.script(Reply(text="6 * 7 = 42"))
    with client.responses.create(model="checked", input="6*7?", stream=True) as s:
        final = [e for e in s if e.type == "response.completed"][0].response
    assert final.output_text == "6 * 7 = 42"
    g.flush()
    rows = [x for x in g.ledger.query() if x.client_format == "responses"]
    assert [x.decision for x in rows[-5:]] == ["frontier", "local", "frontier", "frontier", "frontier"]


# ---------------------------------------------------------------------------- shapes, validated


def _raw_post(g, body: dict) -> tuple[int, bytes]:
    import urllib.request
    req = urllib.request.Request(g.url + "/v1/responses", data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


def test_every_event_and_body_validates_against_the_sdk_types(gateway, anthropic_up):
    # The SDK builds its models without validation; validating here checks every required field.
    from openai.types.responses import Response, ResponseStreamEvent
    from pydantic import TypeAdapter
    g = gateway(_config("anthropic", anthropic_up.url))
    reply = Reply(text="It is sunny.", thinking="let me think", tool_calls=[ToolCall("get_weather", {"city": "Rome"})])
    anthropic_up.default = reply
    base = {"model": "main", "input": "weather?", "tools": [WEATHER], "reasoning": {"effort": "medium"},
            "max_output_tokens": 8000}
    status, raw = _raw_post(g, base)
    assert status == 200
    resp = Response.model_validate_json(raw)
    assert [o.type for o in resp.output] == ["reasoning", "message", "function_call"]
    status, raw = _raw_post(g, {**base, "stream": True})
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        name, data = block.split("\n", 1)
        ev = TypeAdapter(ResponseStreamEvent).validate_json(data.removeprefix("data: "))
        assert name == f"event: {ev.type}"
        events.append(ev)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1]
    assert final.type == "response.completed" and final.response.usage is not None
    assert [o.type for o in final.response.output] == ["reasoning", "message", "function_call"]
    added = [e.output_index for e in events if e.type == "response.output_item.added"]
    assert added == [0, 1, 2]


def test_namespace_tools_and_hosted_tools(setup, upstream_kind):
    g, up = setup
    client = oai(g)
    tools = [
        {"type": "namespace", "name": "crm", "description": "customer records", "tools": [
            {"type": "function", "name": "lookup", "description": "find a customer",
             "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]},
        {"type": "web_search"},  # hosted: the upstream models cannot run it, so it is left out
        WEATHER,
    ]
    up.script(Reply(tool_calls=[ToolCall("crm__lookup", {"q": "Ada"}, id="call_ns")]))
    r = client.responses.create(model="main", input="find Ada", tools=tools)
    call = r.output[-1]
    assert call.type == "function_call" and call.name == "lookup" and call.namespace == "crm"
    sent = up.requests[-1].body["tools"]
    names = [t["function"]["name"] if upstream_kind == "openai" else t["name"] for t in sent]
    assert names == ["crm__lookup", "get_weather"]
    assert [t.type for t in r.tools] == ["namespace", "function"]
    # the call passed back keeps naming the namespaced function upstream
    up.script(Reply(text="Ada is a customer."))
    client.responses.create(model="main", tools=tools, input=[
        {"role": "user", "content": "find Ada"}, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": [{"type": "input_text", "text": "found"}]}])
    assistant = up.requests[-1].body["messages"][1]
    if upstream_kind == "openai":
        assert assistant["tool_calls"][0]["function"]["name"] == "crm__lookup"
    else:
        assert assistant["content"][-1]["name"] == "crm__lookup"


def test_max_output_tokens_stop_is_incomplete(setup):
    g, up = setup
    up.default = Reply(text="cut short", stop_reason="max_tokens")
    r = oai(g).responses.create(model="main", input="long story", max_output_tokens=16)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    with oai(g).responses.create(model="main", input="long story", max_output_tokens=16, stream=True) as s:
        last = list(s)[-1]
    assert last.type == "response.incomplete" and last.response.incomplete_details.reason == "max_output_tokens"


def test_reasoning_content_from_an_openai_compatible_server(gateway, openai_up):
    # vLLM / DeepSeek / llama.cpp style: the chain of thought in `reasoning_content`
    from tests.doubles import Raw
    g = gateway(_config("openai", openai_up.url))
    whole = {"id": "chatcmpl-r1", "object": "chat.completion", "created": 1, "model": "upstream-model",
             "choices": [{"index": 0, "finish_reason": "stop", "message": {
                 "role": "assistant", "content": "4", "reasoning_content": "2 plus 2 is 4"}}],
             "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15,
                       "prompt_tokens_details": {"cached_tokens": 4}}}
    openai_up.script(Raw(body=json.dumps(whole)))
    r = oai(g).responses.create(model="main", input="2+2?")
    assert [o.type for o in r.output] == ["reasoning", "message"]
    assert r.output[0].content[0].text == "2 plus 2 is 4" and r.output[0].encrypted_content is None
    assert r.output_text == "4" and r.usage.input_tokens == 9 and r.usage.input_tokens_details.cached_tokens == 4

    def chunk(delta, finish=None):
        return "data: " + json.dumps({"id": "chatcmpl-r2", "object": "chat.completion.chunk", "created": 1,
                                      "model": "upstream-model", "choices": [
                                          {"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
    stream = (chunk({"role": "assistant", "content": ""}) + chunk({"reasoning_content": "2 plus "})
              + chunk({"reasoning_content": "2 is 4"}) + chunk({"content": "4"}) + chunk({}, "stop")
              + "data: [DONE]\n\n")
    openai_up.script(Raw(body=stream, content_type="text/event-stream"))
    with oai(g).responses.create(model="main", input="2+2?", stream=True) as s:
        events = list(s)
    deltas = [e.delta for e in events if e.type == "response.reasoning_text.delta"]
    assert deltas == ["2 plus ", "2 is 4"]
    final = events[-1].response
    assert [o.type for o in final.output] == ["reasoning", "message"] and final.output_text == "4"
