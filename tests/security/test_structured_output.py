"""Structured output against a model that does not honour it (wire/strict_output.py). A client that asks for JSON
(`response_format`, the Responses API's `text.format`, Anthropic's `output_config.format` or a forced tool) parses
the answer with its SDK; a local model without a grammar writes prose, a fenced block, or JSON off the schema.
Real HTTP on loopback: `local` is the OpenAI-format double, `frontier` the Anthropic one; the official SDKs are the
clients, and the caller must get a parsed object (the frontier's), never an SDK exception."""

from __future__ import annotations

import json
import threading
from typing import Any

import anthropic
import openai
import pydantic
import pytest

from tests.doubles import Hold, Raw, Reply, SlowStream, ToolCall
from tests.gateway.conftest import ant, oai


class Weather(pydantic.BaseModel):
    city: str
    celsius: int


GOOD = '{"city": "Paris", "celsius": 21}'
FRONTIER = Weather(city="Oslo", celsius=3)

WRONG = {  # what a local model writes when asked for `Weather`
    "prose": "The weather in Paris is 21 degrees.",
    "fenced": "```json\n" + GOOD + "\n```",
    "prose, then JSON": "Sure! " + GOOD,
    "off the schema": '{"city": "Paris", "celsius": "warm"}',
    "a field missing": '{"city": "Paris"}',
    "an array": "[1, 2]",
    "JSON, then prose": GOOD + " Hope that helps!",
    "cut JSON": '{"city": "Paris", "cel',
    "empty": "",
}
KW = {"model": "main", "messages": [{"role": "user", "content": "weather in Paris?"}]}


def _route(two_tier, openai_up, anthropic_up, *local: Any, targets: tuple[str, ...] = ("local", "frontier")) -> Any:
    g = two_tier(routes={"main": {"policy": "fallback", "targets": list(targets), "retries": 0}},
                 breaker={"failures": 3, "cooldown": 60})
    openai_up.script(*local)
    anthropic_up.script(Reply(text=FRONTIER.model_dump_json()))
    return g


# ------------------------------------------------------------------------------------------ OpenAI Chat Completions

@pytest.mark.parametrize("case", sorted(WRONG))
def test_parse_gets_the_next_targets_object_when_the_local_answer_is_not_the_schemas(two_tier, openai_up,
                                                                                     anthropic_up, case):
    """Relayed as written, each answer made `chat.completions.parse` raise pydantic's `ValidationError` in the
    caller's code (the empty one parsed as None)."""
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=WRONG[case]))
    done = oai(g).chat.completions.parse(**KW, response_format=Weather)
    assert done.choices[0].message.parsed == FRONTIER
    assert len(anthropic_up.requests) == 1
    g.flush()
    rec = g.ledger.query()[-1]
    assert "structured output" in json.dumps(rec.steps), rec.steps  # the local step's reason
    assert rec.steps[0]["ok"] is False


def test_the_beta_parse_helper_too(two_tier, openai_up, anthropic_up):
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=WRONG["fenced"]))
    done = oai(g).beta.chat.completions.parse(**KW, response_format=Weather)
    assert done.choices[0].message.parsed == FRONTIER


def test_an_answer_that_honours_the_schema_stays_local(two_tier, openai_up, anthropic_up):
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=GOOD), Reply(text=GOOD))
    assert oai(g).chat.completions.parse(**KW, response_format=Weather).choices[0].message.parsed == Weather(
        city="Paris", celsius=21)
    with oai(g).chat.completions.stream(**KW, response_format=Weather) as s:
        for _ in s:
            pass
        assert s.get_final_completion().choices[0].message.parsed == Weather(city="Paris", celsius=21)
    assert not anthropic_up.requests


def test_without_a_response_format_prose_stays_local(two_tier, openai_up, anthropic_up):
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=WRONG["prose"]), Reply(text=WRONG["prose"]))
    assert oai(g).chat.completions.create(**KW).choices[0].message.content == WRONG["prose"]
    with oai(g).chat.completions.stream(**KW) as s:
        assert s.get_final_completion().choices[0].message.content == WRONG["prose"]
    assert not anthropic_up.requests


def one_write(text: str) -> Raw:
    """A whole answer's stream in one write (so in one read): role chunk, the text in pieces, finish, [DONE]."""
    def chunk(delta: dict, finish: str | None = None) -> str:
        return "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
    pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    return Raw(body=chunk({"role": "assistant", "content": ""}) + "".join(chunk({"content": p}) for p in pieces)
               + chunk({}, "stop") + "data: [DONE]\n\n", content_type="text/event-stream")


@pytest.mark.parametrize("case", sorted(WRONG))
def test_stream_helper_gets_the_next_targets_object(two_tier, openai_up, anthropic_up, case):
    """The whole stream in one read: what the check finds wrong never reached the client, so the route moves on
    silently (before: `ValueError` from the SDK's partial parser, or `ValidationError` at the finish chunk)."""
    g = _route(two_tier, openai_up, anthropic_up, one_write(WRONG[case]))
    with oai(g).chat.completions.stream(**KW, response_format=Weather) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    assert final.choices[0].message.parsed == FRONTIER


@pytest.mark.parametrize("case", ["prose", "fenced", "prose, then JSON", "an array", "empty"])
def test_a_stream_that_starts_wrong_moves_on_even_when_its_opening_came_alone(two_tier, openai_up, anthropic_up,
                                                                              case):
    """llama.cpp and vLLM send the role chunk in a write of its own, long before the first token: relayed at
    once, it made the stream the client's, and an answer that began with prose could only end in an error. The
    opening is held until the first text piece has passed."""
    g = _route(two_tier, openai_up, anthropic_up, SlowStream(0.05, Reply(text=WRONG[case])))
    with oai(g).chat.completions.stream(**KW, response_format=Weather) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    assert final.choices[0].message.parsed == FRONTIER


@pytest.mark.parametrize("case", ["off the schema", "a field missing", "JSON, then prose"])
def test_a_stream_that_goes_wrong_after_the_client_read_part_ends_with_an_api_error(two_tier, openai_up,
                                                                                    anthropic_up, case):
    """Valid JSON pieces went out as they came: no other target can take over, so the stream ends with the API's
    error event (`APIError`), never with the finish chunk at which the SDK validates (`ValidationError`). The
    double sends the finish chunk in a write of its own, before the usage chunk and [DONE]: it is held until the
    whole text has passed."""
    g = _route(two_tier, openai_up, anthropic_up)
    for _ in range(4):  # more than `breaker.failures`: a model that cannot honour the format is no outage
        # The rest of the answer waits until the client has read its opening (paced 50 ms apart instead, a busy
        # machine's gateway read it all at once, judged it before anything went out and answered 502).
        read = threading.Event()
        openai_up.script(Hold(2, read, Reply(text=WRONG[case])))
        with pytest.raises(openai.APIError) as e:
            with oai(g).chat.completions.stream(**KW, response_format=Weather) as s:
                for _ in s:
                    read.set()
        assert not isinstance(e.value, openai.APIStatusError)
        assert "structured output" in str(e.value), e.value
    openai_up.script(Reply(text="fine"))
    assert oai(g).chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}]
                                          ).choices[0].message.content == "fine"


def test_json_object_mode_wants_a_json_object(two_tier, openai_up, anthropic_up):
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=WRONG["fenced"]), Reply(text='{"any": "object"}'))
    done = oai(g).chat.completions.create(**KW, response_format={"type": "json_object"})
    assert json.loads(done.choices[0].message.content or "") == FRONTIER.model_dump()
    done = oai(g).chat.completions.create(**KW, response_format={"type": "json_object"})
    assert json.loads(done.choices[0].message.content or "") == {"any": "object"}  # any object stays local


def test_a_cut_answer_is_left_to_the_sdk(two_tier, openai_up, anthropic_up):
    """Cut by max_tokens: OpenAI's own answer would be cut too, and the SDK raises `LengthFinishReasonError`."""
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=WRONG["cut JSON"], stop_reason="length"))
    with pytest.raises(openai.LengthFinishReasonError):
        oai(g).chat.completions.parse(**KW, response_format=Weather, max_tokens=5)
    assert not anthropic_up.requests


def test_no_target_left_is_an_error_in_the_clients_schema(two_tier, openai_up, anthropic_up):
    """The only target, or every target, answered off the format: a 502 in the API's own error schema (every
    target failing was a 503 `overloaded_error`, an outage clients retry for minutes)."""
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    openai_up.script(Reply(text=WRONG["prose"]))
    with pytest.raises(openai.APIStatusError) as e:  # the SDK's default retries: a 5xx is tried 3 times
        g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=2)).chat.completions.parse(**KW, response_format=Weather)
    assert e.value.status_code == 502 and "structured output" in e.value.message
    # The same request would meet the same model (each try paid): the SDKs obey `x-should-retry: false`.
    assert e.value.response.headers["x-should-retry"] == "false"
    assert len(openai_up.requests) == 1
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}})
    openai_up.script(Reply(text=WRONG["prose"]))
    anthropic_up.script(Reply(text="Oslo, 3 degrees"))
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).chat.completions.parse(**KW, response_format=Weather)
    assert e.value.status_code == 502, e.value
    assert "local" in e.value.message and "frontier" in e.value.message


# ------------------------------------------------------------------------------------------------- Responses API

def _drained(stream_manager: Any, final: str) -> Any:
    """Read an SDK stream helper to its end and return its final object (`get_final_response`/`get_final_message`)."""
    with stream_manager as s:
        for _ in s:
            pass
        return getattr(s, final)()


# Streamed, an answer that begins as JSON and breaks the schema only at its end moves on only when nothing of it
# reached the client yet (the whole stream in one read): which it is depends on the upstream's writes, so the
# stream cases below are those that fail at their first piece.
@pytest.mark.parametrize(("case", "stream"), [("prose", False), ("fenced", False), ("off the schema", False),
                                              ("empty", False), ("prose", True), ("fenced", True), ("empty", True)])
def test_responses_parse_gets_the_next_targets_object(two_tier, openai_up, anthropic_up, case, stream):
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=WRONG[case]))
    kw = {"model": "main", "input": "weather in Paris?", "text_format": Weather}
    done = _drained(oai(g).responses.stream(**kw), "get_final_response") if stream else oai(g).responses.parse(**kw)
    assert done.output_parsed == FRONTIER


# ------------------------------------------------------------------------------------------------- Anthropic clients

@pytest.mark.parametrize(("case", "stream"), [("prose", False), ("fenced", False), ("off the schema", False),
                                              ("prose", True), ("fenced", True)])
def test_an_anthropic_clients_output_format_moves_on_too(two_tier, openai_up, anthropic_up, case, stream):
    """`messages.parse(output_format=...)`: Anthropic constrains the answer to the schema, the SDK validates it
    (`ValidationError` in the caller's code before)."""
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=WRONG[case]))
    kw: dict[str, Any] = {"model": "main", "max_tokens": 200, "output_format": Weather,
                          "messages": [{"role": "user", "content": "weather in Paris?"}]}
    done = _drained(ant(g).messages.stream(**kw), "get_final_message") if stream else ant(g).messages.parse(**kw)
    assert done.parsed_output == FRONTIER


WEATHER_TOOL = {"name": "weather", "input_schema": Weather.model_json_schema()}


@pytest.mark.parametrize("stream", [False], ids=["create"])
@pytest.mark.parametrize("how", ["forced", "strict"])
def test_an_anthropic_clients_forced_or_strict_tool_moves_on_when_its_input_is_off_the_schema(
        two_tier, openai_up, anthropic_up, how, stream):
    """A tool forced by `tool_choice` (instructor's and LangChain's structured output for Claude), or marked
    `"strict": true`: its input off the schema made the caller's model validation raise."""
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}})
    openai_up.script(Reply(tool_calls=[ToolCall("weather", {"city": "Paris", "celsius": "warm"})]))
    anthropic_up.script(Reply(tool_calls=[ToolCall("weather", FRONTIER.model_dump(), id="toolu_1")]))
    tool = {**WEATHER_TOOL, "strict": True} if how == "strict" else WEATHER_TOOL
    kw: dict[str, Any] = {"model": "main", "max_tokens": 200, "tools": [tool],
                          "messages": [{"role": "user", "content": "weather in Paris?"}]}
    if how == "forced":
        kw["tool_choice"] = {"type": "tool", "name": "weather"}
    if stream:
        with ant(g).messages.stream(**kw) as s:
            for _ in s:
                pass
            done = s.get_final_message()
    else:
        done = ant(g).messages.create(**kw)
    assert [Weather.model_validate(b.input) for b in done.content if b.type == "tool_use"] == [FRONTIER]


def test_an_anthropic_tool_neither_forced_nor_strict_is_relayed_as_written(two_tier, openai_up, anthropic_up):
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}})
    openai_up.script(Reply(tool_calls=[ToolCall("weather", {"city": "Paris", "celsius": "warm"})]))
    done = ant(g).messages.create(model="main", max_tokens=200, tools=[WEATHER_TOOL],  # type: ignore[list-item]
                                  messages=[{"role": "user", "content": "weather in Paris?"}])
    assert [b.input for b in done.content if b.type == "tool_use"] == [{"city": "Paris", "celsius": "warm"}]
    assert not anthropic_up.requests


def test_an_anthropic_client_with_no_target_left_gets_an_anthropic_error(two_tier, openai_up, anthropic_up):
    g = _route(two_tier, openai_up, anthropic_up, Reply(text=WRONG["prose"]), targets=("local",))
    with pytest.raises(anthropic.APIStatusError) as e:
        g.keep(anthropic.Anthropic(base_url=g.url, api_key="test", max_retries=2)).messages.parse(model="main", max_tokens=200, output_format=Weather,
                              messages=[{"role": "user", "content": "weather in Paris?"}])
    assert e.value.status_code == 502 and "structured output" in e.value.message
    assert e.value.response.headers["x-should-retry"] == "false" and len(openai_up.requests) == 1


# ------------------------------------------------------------------------------- strict tools, streamed in pieces

class Edit(pydantic.BaseModel):
    path: str


STRICT_KW = {"model": "main", "messages": [{"role": "user", "content": "edit a.py"}],
             "tools": [openai.pydantic_function_tool(Edit)]}


def test_a_strict_tool_call_that_starts_wrong_moves_on_even_when_its_opening_came_alone(two_tier, openai_up,
                                                                                       anthropic_up):
    """The same holds for strict tools (wire/strict_tools.py), whose stream was checked piece by piece but relayed
    its opening (the role chunk, written alone) at once: arguments that could not begin an object ended in an error
    where the next target could have answered."""
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}})
    openai_up.script(SlowStream(0.05, Reply(tool_calls=[ToolCall("Edit", [1, 2])])))  # type: ignore[arg-type]
    anthropic_up.script(Reply(tool_calls=[ToolCall("Edit", {"path": "b.py"}, id="toolu_1")]))
    with oai(g).chat.completions.stream(**STRICT_KW) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.parsed_arguments == Edit(path="b.py")


def test_a_strict_tool_call_off_its_schema_never_reaches_the_sdks_finish(two_tier, openai_up, anthropic_up):
    """Arguments that begin an object go out as they come; the finish chunk (a write of its own, before the usage
    chunk and [DONE]), at which the SDK validates the call, went out before the call was judged: pydantic's
    `ValidationError` in the caller's code. Now held until judged: the API's error event."""
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}})
    read = threading.Event()  # the rest after the call's first piece of arguments has reached the client
    openai_up.script(Hold(3, read, Reply(tool_calls=[ToolCall("Edit", {"path": 5})])))
    with pytest.raises(openai.APIError) as e:
        with oai(g).chat.completions.stream(**STRICT_KW) as s:
            for _ in s:
                read.set()
    assert not isinstance(e.value, openai.APIStatusError)
    assert "strict tool 'Edit'" in str(e.value), e.value
