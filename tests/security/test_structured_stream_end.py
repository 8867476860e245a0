"""Structured output, round 2 (wire/strict_output.py): a stream whose answer breaks its schema only at the end,
after the client read part of it, in each API the client can speak; and every choice of an `n > 1` stream.
Real HTTP on loopback, the official SDKs as clients; `local` is the OpenAI-format double."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pydantic
import pytest

from tests.doubles import Hold, OpenAIDouble, Raw, Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config


class Weather(pydantic.BaseModel):
    city: str
    celsius: int


GOOD = '{"city": "Paris", "celsius": 21}'
OFF = '{"city": "Paris", "celsius": "warm"}'  # begins as JSON; breaks the schema only at its end


def _only_local(two_tier: Any, openai_up: OpenAIDouble, *script: Any) -> Any:
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    openai_up.script(*script)
    return g


def _ledger_says_invalid(g: Any) -> None:
    """The ledger records the failure: the request's status, the error's text and the local step's reason."""
    g.flush()
    rec = g.ledger.query()[-1]
    assert rec.status >= 400 and rec.error_message and "structured output" in rec.error_message, rec
    assert rec.steps[-1]["ok"] is False and "structured output" in rec.steps[-1]["reason"], rec.steps


# ------------------------------------------------------- (1) broken at the end, after the client read part of it
# The answer's rest waits until the client has read its opening (`Hold`): paced 50 ms apart instead, a busy
# machine's gateway could read it whole, judge it before anything went out, and answer with an HTTP error.

def test_openai_chat_stream_ends_with_an_api_error_and_the_ledger_records_it(two_tier, openai_up):
    read = threading.Event()
    g = _only_local(two_tier, openai_up, Hold(2, read, Reply(text=OFF)))
    seen: list[str] = []
    with pytest.raises(openai.APIError) as e:
        with oai(g).chat.completions.stream(model="main", messages=[{"role": "user", "content": "hi"}],
                                            response_format=Weather) as s:
            for ev in s:
                read.set()
                if ev.type == "content.delta":
                    seen.append(ev.delta)
    assert seen, "part of the answer reached the client before it broke"
    assert not isinstance(e.value, openai.APIStatusError) and "structured output" in str(e.value)
    _ledger_says_invalid(g)


def test_a_responses_stream_ends_with_its_error_event_never_a_completed_response(two_tier, openai_up):
    """The Responses API's stream ends with `error` and `response.failed` (as OpenAI's own does; the SDK yields them
    rather than raising), never with `response.completed` holding text that `text_format`'s model refuses."""
    read = threading.Event()
    g = _only_local(two_tier, openai_up, Hold(2, read, Reply(text=OFF)))
    seen: list[Any] = []
    with oai(g).responses.stream(model="main", input="hi", text_format=Weather) as s:
        for ev in s:
            read.set()
            seen.append(ev)
        with pytest.raises(RuntimeError, match="response.completed"):
            s.get_final_response()
    kinds = [ev.type for ev in seen]
    assert "response.output_text.delta" in kinds and kinds[-2:] == ["error", "response.failed"], kinds
    assert "structured output" in seen[-2].message and "structured output" in seen[-1].response.error.message
    _ledger_says_invalid(g)


def test_an_anthropic_stream_ends_with_an_error_event_never_a_message_stop(two_tier, openai_up):
    read = threading.Event()
    g = _only_local(two_tier, openai_up, Hold(2, read, Reply(text=OFF)))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as e:
        with ant(g).messages.stream(model="main", max_tokens=200, output_format=Weather,
                                    messages=[{"role": "user", "content": "hi"}]) as s:
            for ev in s:
                read.set()
                seen.append(ev.type)
    assert "content_block_delta" in seen or "text" in seen, seen
    assert "message_stop" not in seen
    assert "structured output" in str(e.value.message), e.value
    _ledger_says_invalid(g)


def test_before_anything_went_up_the_next_target_answers(two_tier, openai_up, anthropic_up):
    """The same answer in one write (a hand-made stream: the double's own streams write event by event, which a
    busy machine delivers in several reads): nothing reached the client when it was judged, so the next target
    answers."""
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}})
    openai_up.script(Raw(body=_n_stream([OFF]), content_type="text/event-stream"))
    anthropic_up.script(Reply(text='{"city": "Oslo", "celsius": 3}'))
    with ant(g).messages.stream(model="main", max_tokens=200, output_format=Weather,
                                messages=[{"role": "user", "content": "hi"}]) as s:
        for _ in s:
            pass
        assert s.get_final_message().parsed_output == Weather(city="Oslo", celsius=3)


# -------------------------------------------------------------------------------- (4) every choice of n > 1

def _n_stream(texts: list[str], *, finishes: list[str] | None = None) -> bytes:
    """An `n = len(texts)` stream in OpenAI's shape, choice by choice, in one write."""
    def chunk(i: int, delta: dict[str, Any], finish: str | None = None) -> str:
        return "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                      "choices": [{"index": i, "delta": delta, "finish_reason": finish}]}) + "\n\n"
    out = [chunk(i, {"role": "assistant", "content": ""}) for i in range(len(texts))]
    for i, t in enumerate(texts):
        out += [chunk(i, {"content": t[k:k + 7]}) for k in range(0, len(t), 7)]
    for i in range(len(texts)):
        out.append(chunk(i, {}, (finishes or ["stop"] * len(texts))[i]))
    return ("".join(out) + "data: [DONE]\n\n").encode()


@pytest.fixture
def second_up() -> Iterator[OpenAIDouble]:
    d = OpenAIDouble()
    d.start()
    yield d
    d.stop()


def _two_openai(gateway: Any, openai_up: OpenAIDouble, second_up: OpenAIDouble) -> Any:
    return gateway(two_tier_config(openai_up.url, second_up.url, remote_kind="openai",
                                   routes={"main": {"policy": "fallback", "targets": ["local", "frontier"],
                                                    "retries": 0}}))


@pytest.mark.parametrize("bad", ["prose", "fenced", "off the schema"])
def test_an_n_stream_whose_second_choice_is_off_the_format_moves_on(gateway, openai_up, second_up, bad):
    """Only choice 0 was checked: choice 1's prose reached `chat.completions.stream` (`ValueError` from its partial
    parser, or `ValidationError` at the finish) in the caller's code."""
    wrong = {"prose": "Paris is warm.", "fenced": "```json\n" + GOOD + "\n```", "off the schema": OFF}[bad]
    g = _two_openai(gateway, openai_up, second_up)
    openai_up.script(Raw(body=_n_stream([GOOD, wrong]), content_type="text/event-stream"))
    second_up.script(Reply(text='{"city": "Oslo", "celsius": 3}'))
    with oai(g).chat.completions.stream(model="main", messages=[{"role": "user", "content": "hi"}], n=2,
                                        response_format=Weather) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    assert [c.message.parsed for c in final.choices] == [Weather(city="Oslo", celsius=3)] * 2
    g.flush()
    assert "choice 1" in g.ledger.query()[-1].steps[0]["reason"]


def test_an_n_stream_with_every_choice_good_stays_local_and_a_cut_choice_is_left_to_the_sdk(gateway, openai_up,
                                                                                          second_up):
    g = _two_openai(gateway, openai_up, second_up)
    openai_up.script(Raw(body=_n_stream([GOOD, GOOD]), content_type="text/event-stream"),
                     Raw(body=_n_stream([GOOD, '{"city": "Par'], finishes=["stop", "length"]),
                         content_type="text/event-stream"))
    kw: dict[str, Any] = {"model": "main", "messages": [{"role": "user", "content": "hi"}], "n": 2,
                          "response_format": Weather}
    with oai(g).chat.completions.stream(**kw) as s:
        for _ in s:
            pass
        assert [c.message.parsed for c in s.get_final_completion().choices] == [Weather(city="Paris",
                                                                                       celsius=21)] * 2
    with pytest.raises(openai.LengthFinishReasonError):
        with oai(g).chat.completions.stream(**kw) as s:
            for _ in s:
                pass
    assert not second_up.requests


# ------------------------------------------- (3) Anthropic's own structured output for an OpenAI client's schema

class Booking(pydantic.BaseModel):
    guests: int = pydantic.Field(ge=1, le=8)
    email: str = pydantic.Field(pattern=r"^\S+@\S+$")


def _native(gateway: Any, openai_up: OpenAIDouble, anthropic_up: Any, mode: str) -> Any:
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"]["structured_output"] = mode
    return gateway(cfg)


@pytest.mark.parametrize("stream", [False, True])
def test_a_native_model_gets_anthropics_output_config_and_the_answer_is_still_checked(gateway, openai_up,
                                                                                      anthropic_up, stream):
    """Configured `structured_output: native`, a Claude model is asked with `output_config.format` (its sampling
    held to the schema) rather than only told in the system prompt; the bounds Anthropic does not take (`minimum`,
    `pattern`) are cut from what is sent, stay in the instruction, and are still checked on the answer."""
    g = _native(gateway, openai_up, anthropic_up, "native")
    anthropic_up.script(Reply(text='{"guests": 2, "email": "a@b.c"}'), Reply(text='{"guests": 20, "email": "a@b.c"}'))
    kw: dict[str, Any] = {"model": "main", "messages": [{"role": "user", "content": "book"}],
                          "response_format": Booking}
    if stream:
        with oai(g).chat.completions.stream(**kw) as s:
            for _ in s:
                pass
            assert s.get_final_completion().choices[0].message.parsed == Booking(guests=2, email="a@b.c")
    else:
        assert oai(g).chat.completions.parse(**kw).choices[0].message.parsed == Booking(guests=2, email="a@b.c")
    sent = anthropic_up.requests[-1].body
    schema = sent["output_config"]["format"]["schema"]
    assert sent["output_config"]["format"]["type"] == "json_schema"
    assert schema["additionalProperties"] is False and schema["required"] == ["guests", "email"]
    assert schema["properties"]["guests"] == {"type": "integer", "title": "Guests"}  # `minimum`/`maximum` cut
    assert "pattern" not in schema["properties"]["email"]
    assert '"maximum":8' in sent["system"]  # the cut bounds still reach the model, in the instruction
    with pytest.raises(openai.APIStatusError) as e:  # 20 guests: Anthropic's constraint could not hold `maximum`
        oai(g).chat.completions.parse(**kw)
    assert e.value.status_code == 502 and "`maximum` at /guests" in e.value.message


def test_a_schema_anthropic_takes_whole_goes_without_the_instruction_and_the_default_is_unchanged(
        gateway, openai_up, anthropic_up):
    g = _native(gateway, openai_up, anthropic_up, "native")
    anthropic_up.script(Reply(text=GOOD))
    oai(g).chat.completions.parse(model="main", messages=[{"role": "user", "content": "hi"}], response_format=Weather)
    sent = anthropic_up.requests[-1].body
    assert sent["output_config"]["format"]["schema"]["properties"]["celsius"] == {"type": "integer", "title": "Celsius"}
    assert "system" not in sent  # nothing cut: no instruction
    g = _native(gateway, openai_up, anthropic_up, "instruction")  # the default: as before
    anthropic_up.script(Reply(text=GOOD))
    oai(g).chat.completions.parse(model="main", messages=[{"role": "user", "content": "hi"}], response_format=Weather)
    sent = anthropic_up.requests[-1].body
    assert "output_config" not in sent and "JSON Schema" in sent["system"]


def test_an_upstream_that_ignores_n_still_answers(gateway, openai_up, second_up):
    """A server that streams one choice although asked for two: the opening waits for a choice that never comes,
    so the stream is held to its end and judged whole, then relayed (never stuck, never unchecked)."""
    g = _two_openai(gateway, openai_up, second_up)
    openai_up.script(Raw(body=_n_stream([GOOD]), content_type="text/event-stream"),
                     Raw(body=_n_stream(["Paris is warm."]), content_type="text/event-stream"))
    second_up.script(Reply(text='{"city": "Oslo", "celsius": 3}'))
    kw: dict[str, Any] = {"model": "main", "messages": [{"role": "user", "content": "hi"}], "n": 2,
                          "response_format": Weather}
    for want in (Weather(city="Paris", celsius=21), Weather(city="Oslo", celsius=3)):
        with oai(g).chat.completions.stream(**kw) as s:
            for _ in s:
                pass
            assert s.get_final_completion().choices[0].message.parsed == want


@pytest.mark.parametrize("field", [{"type": "object"}, {"type": "object", "additionalProperties": True},
                                   {"type": "object", "patternProperties": {"^x": {"type": "integer"}}}])
def test_a_free_map_is_not_closed_into_an_empty_object(gateway, openai_up, anthropic_up, field):
    """review26b: native output closes every object (`additionalProperties: false`, as Anthropic wants), which for
    an object without properties (`dict[str, Any]`, a `patternProperties` map) left the model only `{}` to write,
    an answer the check passed: the client's data was lost without a word. Such a schema goes as the instruction."""
    g = _native(gateway, openai_up, anthropic_up, "native")
    anthropic_up.script(Reply(text='{"meta": {"x1": 1}}'))
    schema = {"type": "object", "properties": {"meta": field}, "required": ["meta"], "additionalProperties": False}
    r = oai(g).chat.completions.create(
        model="main", messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_schema", "json_schema": {"name": "m", "schema": schema}})
    assert r.choices[0].message.content == '{"meta": {"x1": 1}}'
    sent = anthropic_up.requests[-1].body
    assert "output_config" not in sent and "JSON Schema" in sent["system"], sent.get("output_config")


@pytest.mark.parametrize("extras", [{"additionalProperties": True}, {}, {"additionalProperties": {}},
                                    {"additionalProperties": {"type": "integer"}}])
@pytest.mark.parametrize("nested", [False, True])
def test_an_object_with_properties_open_to_extras_keeps_them(gateway, openai_up, anthropic_up, extras, nested):
    """small26: an object with properties that allows extras (`additionalProperties: true`, `{}`, or absent in a
    non-strict schema) was closed too, so the model could not write the extras the client's schema allows and
    the client lost them without a word. Such a schema goes as the instruction only, as free maps do."""
    g = _native(gateway, openai_up, anthropic_up, "native")
    obj = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], **extras}
    schema = ({"type": "object", "properties": {"place": obj}, "required": ["place"], "additionalProperties": False}
              if nested else obj)
    answer = {"city": "Paris", "zip": 75001}
    text = json.dumps({"place": answer} if nested else answer)
    anthropic_up.script(Reply(text=text))
    r = oai(g).chat.completions.create(
        model="main", messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}})
    assert json.loads(r.choices[0].message.content) == json.loads(text)
    sent = anthropic_up.requests[-1].body
    assert "output_config" not in sent and "JSON Schema" in sent["system"], sent.get("output_config")
