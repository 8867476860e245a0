"""An upstream stream answered with 200 that reports an error inside it is an upstream error, never an answer.

OpenRouter answers 200 once a provider behind it has taken the request; when that provider fails while the
answer streams, the failure comes as a `chat.completion.chunk` with a top-level `error` object (`code`,
`message`, `metadata`) and a choice ending with `finish_reason: "error"`, or as a chunk with no choices and
only the `error` (its docs, "Errors and Debugging"; local-operator#223, OmniRoute#8210). Other proxies end the
choice with `finish_reason: "error"` and nothing more. Anthropic streams report it as an `error` event.

- Before the first byte reached the client: an upstream error like any other (a fallback moves on; one
  target alone answers the client a plain HTTP error, classified by the error's `code`).
- After: the client's stream ends with the mid-stream error of its own API (the openai and anthropic SDKs
  raise it; a Responses stream ends with `error` and `response.failed`), the upstream's text scrubbed, and
  the ledger records the request as failed.
Real HTTP to the doubles, official SDKs.
"""

from __future__ import annotations

import threading
from typing import Any

import anthropic
import openai
import orjson
import pytest

from tests.doubles import Raw, Reply, StreamError
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

SECRET = "sk-local-secret-stream-error-1234567890abcdef"
CHUNK = {"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "provider": "X"}
OPENAI_ERRORS = {  # the data of the chunk that carries the error, from an OpenAI-format upstream
    "OpenRouter: an error beside a choice ending in finish_reason error": {
        **CHUNK, "error": {"code": "server_error", "message": f"Provider disconnected unexpectedly {SECRET}"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error", "native_finish_reason": "error"}]},
    "OpenRouter: an error with code 429 and no choices": {
        **CHUNK, "choices": [], "error": {"code": 429, "message": f"Provider returned error {SECRET}",
                                          "metadata": {"raw": "Worker local total request limit reached (33/32)"}}},
    "a choice ending in finish_reason error, its error inside the choice": {
        **CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "error",
                              "error": {"code": 502, "message": f"provider disconnected {SECRET}"}}]},
    "a choice ending in finish_reason error, and nothing more": {
        **CHUNK, "choices": [{"index": 0, "delta": {"content": " tail"}, "finish_reason": "error"}]},
}
# The status a client gets when the only target fails this way before the first byte.
PRE_START_STATUS = {"OpenRouter: an error with code 429 and no choices": 429}
ANTHROPIC_ERROR = {"type": "error", "error": {"type": "overloaded_error", "message": f"Overloaded {SECRET}"}}
APIS = ["openai", "anthropic", "responses"]


def _gateway(gateway, openai_up, anthropic_up, monkeypatch, targets: list[str]):
    monkeypatch.setenv("LOCAL_KEY", SECRET)
    monkeypatch.setenv("CLOUD_KEY", SECRET)
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": targets, "retries": 0}})
    cfg["providers"]["localsrv"]["api_key_env"] = "LOCAL_KEY"
    cfg["providers"]["cloud"]["api_key_env"] = "CLOUD_KEY"
    return gateway(cfg)


def _stream(g, api: str, on_text: Any = None) -> tuple[str, list[Any]]:
    """(the text the client received, the Responses events); raises what the SDK raises. `on_text` is called
    at the first text the client reads."""
    got: list[str] = []
    events: list[Any] = []

    def text(t: str | None) -> None:
        if t:
            if not got and on_text is not None:
                on_text()
            got.append(t)

    msgs = [{"role": "user", "content": "hi"}]
    if api == "openai":
        with oai(g).chat.completions.create(model="main", messages=msgs, stream=True) as s:
            for c in s:
                text(c.choices[0].delta.content if c.choices else None)
    elif api == "responses":
        with oai(g).responses.create(model="main", input="hi", stream=True) as s:
            for e in s:
                events.append(e)
                text(e.delta if e.type == "response.output_text.delta" else None)
    else:
        with ant(g).messages.create(model="main", max_tokens=50, messages=msgs, stream=True) as s:
            for e in s:
                text(e.delta.text if e.type == "content_block_delta" and e.delta.type == "text_delta" else None)
    return "".join(got), events


def _assert_failed_row(g) -> None:
    g.flush()
    row = g.ledger.query()[-1]
    assert 400 <= row.status != 499 and row.error_message, (row.status, row.error_message)
    assert SECRET not in row.error_message and SECRET not in (row.error_kind or "")


def _mid_stream(g, api: str, release: threading.Event) -> None:
    """Stream until the error ends it (the error released once the client read text); the error is the client
    API's own, scrubbed."""
    if api == "responses":
        text, events = _stream(g, api, release.set)
        kinds = [e.type for e in events]
        assert "response.completed" not in kinds and kinds[-2:] == ["error", "response.failed"], kinds
        failed = events[-1].response
        assert text and failed.status == "failed" and failed.error.message and SECRET not in failed.error.message
        return
    error = openai.APIError if api == "openai" else anthropic.APIError
    with pytest.raises(error) as e:
        _stream(g, api, release.set)
    body = e.value.body
    assert isinstance(body, dict) and SECRET not in orjson.dumps(body).decode(), body
    if api == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] and body["error"]["message"], body
    else:
        assert body["message"] and body["type"], body


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("shape", sorted(OPENAI_ERRORS))
def test_an_openai_streams_error_after_the_first_byte_ends_the_clients_stream_with_an_error(
        gateway, openai_up, anthropic_up, monkeypatch, api, shape):
    """The client has read the answer's first words when the error comes: no other target can take over."""
    g = _gateway(gateway, openai_up, anthropic_up, monkeypatch, ["local", "frontier"])
    release = threading.Event()
    openai_up.script(StreamError(after_chunks=2, data=OPENAI_ERRORS[shape], release=release,
                                 then=Reply(text="half an answer")))
    _mid_stream(g, api, release)
    assert release.is_set()  # the error came after the client read text
    assert len(anthropic_up.requests) == 0
    _assert_failed_row(g)


@pytest.mark.parametrize("api", APIS)
def test_an_anthropic_streams_error_event_after_the_first_byte_ends_the_clients_stream_with_an_error(
        gateway, openai_up, anthropic_up, monkeypatch, api):
    g = _gateway(gateway, openai_up, anthropic_up, monkeypatch, ["frontier", "local"])
    release = threading.Event()
    anthropic_up.script(StreamError(after_chunks=4, data=ANTHROPIC_ERROR, release=release,
                                    then=Reply(text="half an answer")))
    _mid_stream(g, api, release)
    assert release.is_set() and len(openai_up.requests) == 0
    _assert_failed_row(g)


@pytest.mark.parametrize("shape", sorted(OPENAI_ERRORS))
def test_an_openai_streams_error_before_the_first_byte_moves_a_fallback_on(gateway, openai_up, anthropic_up,
                                                                           monkeypatch, shape):
    g = _gateway(gateway, openai_up, anthropic_up, monkeypatch, ["local", "frontier"])
    openai_up.script(StreamError(after_chunks=0, data=OPENAI_ERRORS[shape], then=Reply(text="half an answer")))
    assert _stream(g, "openai")[0] == "ok"  # the Anthropic double's answer
    assert len(openai_up.requests) == 1 and len(anthropic_up.requests) == 1
    g.flush()
    row = g.ledger.query()[-1]
    calls = [s for s in row.steps if s["kind"] == "call"]
    assert row.status == 200 and [c["ok"] for c in calls] == [False, True], calls


def _sse(*objs: Any) -> bytes:
    return b"".join(b"data: " + orjson.dumps(o) + b"\n\n" for o in objs)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("shape", sorted(OPENAI_ERRORS))
def test_an_openai_streams_error_before_the_first_byte_is_the_only_targets_http_error(
        gateway, openai_up, anthropic_up, monkeypatch, api, shape):
    """The stream's opening chunk and its error arrive together: nothing reached the client, so it gets a plain
    HTTP error in its API's schema (the status from the error's `code`), not a 200 stream that fails."""
    g = _gateway(gateway, openai_up, anthropic_up, monkeypatch, ["local"])
    opening = {**CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    openai_up.script(Raw(body=_sse(opening, OPENAI_ERRORS[shape]) + b"data: [DONE]\n\n",
                         content_type="text/event-stream"))
    error = anthropic.APIStatusError if api == "anthropic" else openai.APIStatusError
    with pytest.raises(error) as e:
        _stream(g, api)
    assert e.value.status_code == PRE_START_STATUS.get(shape, 502), (e.value.status_code, e.value.response.text)
    assert SECRET not in e.value.response.text
    _assert_failed_row(g)


def test_an_anthropic_streams_error_event_before_the_first_byte_moves_a_fallback_on(gateway, openai_up,
                                                                                    anthropic_up, monkeypatch):
    """`message_start` and the error in one read: nothing reached the client yet."""
    g = _gateway(gateway, openai_up, anthropic_up, monkeypatch, ["frontier", "local"])
    start = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                                  "content": [], "stop_reason": None, "stop_sequence": None,
                                                  "usage": {"input_tokens": 3, "output_tokens": 1}}}
    body = (b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n"
            + b"event: error\ndata: " + orjson.dumps(ANTHROPIC_ERROR) + b"\n\n")
    anthropic_up.script(Raw(body=body, content_type="text/event-stream"))
    assert _stream(g, "anthropic")[0] == "ok"  # the OpenAI double's answer
    assert len(anthropic_up.requests) == 1 and len(openai_up.requests) == 1


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_mid_stream_error_that_is_the_requests_own_fault_does_not_open_the_breaker(gateway, openai_up,
                                                                                     anthropic_up, api):
    """An error inside the stream that says the request is at fault (code 400: the upstream refused this
    request's content) says nothing about the deployment's health, as in a 200 body or an HTTP 400: a client
    whose requests provoke it must not open the breaker for everyone. (The class was dropped when the stream
    failed after its first byte: every such error counted, and one client's requests took the model down.)"""
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    cfg["breaker"] = {"failures": 1, "cooldown": 600}
    g = gateway(cfg)
    release = threading.Event()
    refusal = {**CHUNK, "choices": [], "error": {"code": 400, "message": "the input was flagged by moderation"}}
    openai_up.script(StreamError(after_chunks=2, data=refusal, release=release, then=Reply(text="half an answer")))
    _mid_stream(g, api, release)
    openai_up.default = Reply(text="next")
    assert _stream(g, api)[0] == "next"  # the breaker stayed closed
