"""An upstream's stream error disguised as an ordinary event, in pass-through (the client speaks the
upstream's API, so the gateway relays the upstream's bytes): the official SDKs read errors by other
rules than the gateway did. The openai SDK raises on any chunk whose `error` member is set, choices or
not; the anthropic SDK raises on any `event: error`, whatever its data's `type`. The gateway read a
chunk with `choices` as an answer chunk, and an `event: error` whose data said `message_delta` as a
message delta, and relayed each as sent: the SDK then raised the upstream's own text, carrying the key
the gateway had sent it, unscrubbed. Real HTTP, the official SDKs, the upstream doubles' raw streams."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.doubles import Raw, Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

OPENAI_KEY = "sk-local-upstream-secret-1234567890abcdef"
ANTHROPIC_KEY = "sk-ant-cloud-upstream-secret-0987654321"
CHUNK = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":%s,"finish_reason":null}]%s}'
OPENAI_STREAMS = {
    "a chunk with choices and an error": [
        "data: " + CHUNK % ('{"role":"assistant","content":"a"}', "") + "\n\n",
        "data: " + CHUNK % ('{"content":"b"}', ',"error":{"message":"you sent Bearer KEY"}') + "\n\n",
        "data: [DONE]\n\n"],
    "an error chunk with empty choices": [
        "data: " + CHUNK % ('{"role":"assistant","content":"a"}', "") + "\n\n",
        'data: {"choices":[],"error":{"message":"you sent Bearer KEY","type":"KEY"}}\n\n',
        "data: [DONE]\n\n"],
}
START = ('event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant",'
         '"model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":0}}}\n\n')
ERROR = '"error":{"type":"api_error","message":"you sent KEY"}'
ANTHROPIC_STREAMS = {
    "event: error, data a message_delta": [
        START, 'event: error\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1},'
               + ERROR + '}\n\n', 'event: message_stop\ndata: {"type":"message_stop"}\n\n'],
    "event: error, data a ping": [START, 'event: error\ndata: {"type":"ping",' + ERROR + '}\n\n',
                                  'event: message_stop\ndata: {"type":"message_stop"}\n\n'],
    "event: error, data a text delta": [
        START, 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
        'event: error\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"},' + ERROR + '}\n\n',
        'event: message_stop\ndata: {"type":"message_stop"}\n\n'],
}


@pytest.fixture
def keyed(gateway, openai_up, anthropic_up, monkeypatch):
    monkeypatch.setenv("LOCAL_KEY", OPENAI_KEY)
    monkeypatch.setenv("CLOUD_KEY", ANTHROPIC_KEY)
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    cfg["providers"]["localsrv"]["api_key_env"] = "LOCAL_KEY"
    cfg["providers"]["cloud"]["api_key_env"] = "CLOUD_KEY"
    return gateway(cfg)


def _ledger_text(g) -> str:
    g.flush()
    return " ".join(f"{r.error_message} {r.error_kind} {r.steps}" for r in g.ledger.query())


@pytest.mark.parametrize("shape", sorted(OPENAI_STREAMS))
def test_an_openai_sdk_never_reads_the_upstreams_key_in_a_disguised_error(keyed, openai_up, shape):
    openai_up.script(Raw(body="".join(OPENAI_STREAMS[shape]).replace("KEY", OPENAI_KEY), content_type="text/event-stream"))
    seen: list[str] = []
    with pytest.raises(openai.APIError) as e:
        for chunk in oai(keyed).chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}],
                                                         stream=True):
            seen.append(chunk.model_dump_json())
    assert "you sent" in str(e.value), e.value  # the error still says what went wrong
    assert OPENAI_KEY not in str(e.value) and OPENAI_KEY not in str(e.value.body), e.value.body
    assert not any(OPENAI_KEY in s for s in seen), seen
    assert OPENAI_KEY not in _ledger_text(keyed)


@pytest.mark.parametrize("shape", sorted(ANTHROPIC_STREAMS))
def test_an_anthropic_sdk_never_reads_the_upstreams_key_in_a_disguised_error(keyed, anthropic_up, shape):
    anthropic_up.script(Raw(body="".join(ANTHROPIC_STREAMS[shape]).replace("KEY", ANTHROPIC_KEY),
                            content_type="text/event-stream"))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as e:
        with ant(keyed).messages.stream(model="frontier", max_tokens=10,
                                        messages=[{"role": "user", "content": "hi"}]) as s:
            for ev in s:
                seen.append(ev.model_dump_json())
    assert "you sent" in str(e.value), e.value
    assert ANTHROPIC_KEY not in str(e.value) and ANTHROPIC_KEY not in str(e.value.body), e.value.body
    assert not any(ANTHROPIC_KEY in s for s in seen), seen
    assert ANTHROPIC_KEY not in _ledger_text(keyed)


BLOCK = ('event: content_block_start\ndata: {"type":"content_block_start","index":%d,"content_block":{"type":"text",'
         '"text":""}}\n\n')
DELTA = ('event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"text_delta",'
         '"text":"x"}}\n\n')
END = ('event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}'
       '\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n')
MISNUMBERED = {
    "a delta for a block never started": START + BLOCK % 0 + DELTA % 0 + DELTA % 5 + END,
    "a first block numbered 3": START + BLOCK % 3 + DELTA % 3 + END,
    "a negative index": START + BLOCK % 0 + DELTA % 0 + DELTA % -1 + END,
    "no message_start": BLOCK % 0 + DELTA % 0 + END,
    "only the end": END,
}


def sdk_stream_error(keyed, anthropic_up, body: str) -> str:
    """The upstream streams `body`; the anthropic SDK's stream helper must raise an API error (its text returned),
    not fail in the caller's code."""
    anthropic_up.script(Raw(body=body, content_type="text/event-stream"))
    with pytest.raises(anthropic.APIStatusError) as e:
        with ant(keyed).messages.stream(model="frontier", max_tokens=10,
                                        messages=[{"role": "user", "content": "hi"}]) as s:
            s.get_final_message()
    return str(e.value)


@pytest.mark.parametrize("shape", sorted(MISNUMBERED))
def test_an_anthropic_stream_with_misnumbered_blocks_is_an_upstream_error(keyed, anthropic_up, shape):
    """Relayed as sent (pass-through), a delta naming a block that never started made the anthropic SDK fail in
    the caller's code (IndexError: list index out of range), and a stream without message_start did too
    (AssertionError), instead of an API error."""
    assert "malformed" in sdk_stream_error(keyed, anthropic_up, MISNUMBERED[shape])


TOOL_BLOCK = ('event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":'
              '"tool_use","id":"toolu_1","name":"f","input":{}}}\n\n')
PIECE = ('event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta",'
         '"partial_json":%s}}\n\n')
STOP0 = 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
MALFORMED_PIECES = {
    "tool input that is not JSON": START + TOOL_BLOCK + PIECE % '"{\\"a\\": 1"' + PIECE % '", oops"' + STOP0 + END,
    "tool input that is an array": START + TOOL_BLOCK + PIECE % '"[1, 2]"' + STOP0 + END,
    "a text piece that is a number": START + BLOCK % 0 + DELTA.replace('"x"', "5") % 0 + END,
    "a text piece that is missing": START + BLOCK % 0 + DELTA.replace(',"text":"x"', "") % 0 + END,
}


@pytest.mark.parametrize("shape", sorted(MALFORMED_PIECES))
def test_an_anthropic_stream_with_pieces_the_sdk_cannot_add_up_is_an_upstream_error(keyed, anthropic_up, shape):
    """Relayed as sent (pass-through), tool input that cannot begin a JSON object made the anthropic SDK raise in
    the caller's code (`ValueError: Unable to parse tool parameter JSON from model`), a text piece that is not a
    string too (`TypeError: can only concatenate str (not "int") to str`), instead of an API error."""
    assert "malformed content_block_delta" in sdk_stream_error(keyed, anthropic_up, MALFORMED_PIECES[shape])


def test_valid_tool_input_in_pieces_still_passes_through(keyed, anthropic_up):
    pieces = ["", '{"ci', 'ty": "Paris \\u00e9", "n": [1, -2.5e3, tr', 'ue, null]}']
    anthropic_up.script(Raw(body=START + TOOL_BLOCK + "".join(PIECE % json.dumps(p) for p in pieces) + STOP0 + END,
                            content_type="text/event-stream"))
    with ant(keyed).messages.stream(model="frontier", max_tokens=10,
                                    messages=[{"role": "user", "content": "hi"}]) as s:
        msg = s.get_final_message()
    assert msg.content[0].input == {"city": "Paris \u00e9", "n": [1, -2500.0, True, None]}


TOOL = ('data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":'
        '{"tool_calls":[{"index":%d,"id":"call_%d","type":"function","function":{"name":"f","arguments":"{}"}}]},'
        '"finish_reason":null}]}\n\n')
TEXT = "data: " + CHUNK % ('{"role":"assistant","content":"a"}', "") + "\n\n"
TOOL_NUMBERING = {
    "a first call numbered 3": TEXT + TOOL % (3, 3) + "data: [DONE]\n\n",
    "a call numbered 2 after call 0": TEXT + TOOL % (0, 0) + TOOL % (2, 2) + "data: [DONE]\n\n",
    "a negative call number": TEXT + TOOL % (-1, 1) + "data: [DONE]\n\n",
}


@pytest.mark.parametrize("shape", sorted(TOOL_NUMBERING))
def test_tool_calls_numbered_from_anywhere_reach_a_translated_client_in_order(keyed, openai_up, shape):
    """Real OpenAI-compatible servers number streamed tool calls from 1, from -1 or with gaps. Translated (here to
    an Anthropic client, as Claude Code on a local server), each call is its own tool_use block, in order: session
    22's first answer to such streams, an upstream error, broke that path."""
    openai_up.script(Raw(body=TOOL_NUMBERING[shape], content_type="text/event-stream"))
    with ant(keyed).messages.stream(model="local", max_tokens=64, messages=[{"role": "user", "content": "hi"}],
                                    tools=[{"name": "f", "input_schema": {"type": "object"}}]) as s:
        msg = s.get_final_message()
    calls = [b for b in msg.content if b.type == "tool_use"]
    expected = {"a first call numbered 3": ["call_3"], "a call numbered 2 after call 0": ["call_0", "call_2"],
                "a negative call number": ["call_1"]}[shape]
    assert [c.id for c in calls] == expected and all(c.name == "f" and c.input == {} for c in calls)


WHOLE_ARRAY_INPUT = json.dumps({"id": "m", "type": "message", "role": "assistant", "model": "m", "content": [
    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": [1, 2]}], "stop_reason": "tool_use",
    "usage": {"input_tokens": 1, "output_tokens": 1}})


def _text(client: str, g, stream: bool) -> str:
    kw = {"messages": [{"role": "user", "content": "hi"}], "model": "main"}
    if client == "anthropic":
        if stream:
            with ant(g).messages.stream(max_tokens=10, **kw) as s:
                return s.get_final_message().content[0].text
        return ant(g).messages.create(max_tokens=10, **kw).content[0].text
    if stream:
        return "".join(c.choices[0].delta.content or "" for c in oai(g).chat.completions.create(stream=True, **kw)
                       if c.choices)
    return oai(g).chat.completions.create(**kw).choices[0].message.content


@pytest.mark.parametrize("client", ["anthropic", "openai"])
def test_anthropic_tool_input_that_is_not_an_object_moves_on_and_is_no_outage(gateway, openai_up, anthropic_up, client):
    """An Anthropic-format upstream's tool input that is not a JSON object is off its API's schema for every
    client: the upstream failed (`invalid_output`, as a strict tool's broken arguments), the route moves on to its
    next target, streamed (the opening read) or not. Not streamed, the input was coerced to `{}` (the call's
    arguments lost; relayed raw to an Anthropic client as the array); streamed, the failure counted against the
    breaker, so a model writing bad tool input closed the deployment to every other request."""
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, breaker={"failures": 3, "cooldown": 60}))
    for _ in range(4):  # more than `breaker.failures` of each kind
        anthropic_up.script(Raw(body=MALFORMED_PIECES["tool input that is an array"], content_type="text/event-stream"),
                            Raw(body=WHOLE_ARRAY_INPUT))
        openai_up.script(Reply(text="from local"), Reply(text="from local"))
        assert _text(client, g, stream=True) == "from local"
        assert _text(client, g, stream=False) == "from local"
    anthropic_up.script(Reply(text="frontier is up"))
    assert ant(g).messages.create(model="frontier", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
                                  ).content[0].text == "frontier is up"
