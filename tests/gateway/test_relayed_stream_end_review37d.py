"""Review of wire14's `StreamEncoder.resume` (session 37, review37d), as a hostile upstream: a stream relayed in the
client's own format that ends in the middle of an event, after an error event, or goes on after its error. Real
HTTP, the upstream doubles sending the bytes, the official SDKs and raw reads of the client's bytes."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import oai
from tests.gateway.test_passthrough_stream_end import ANT_NO_STOP, _ev, _oai
from tests.gateway.test_stream_answered_whole import M, _g

_ERR = 'data: {"error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}}\n\n'


def _raw_ant(g):
    with httpx.stream("POST", g.url + "/v1/messages", json={"model": "main", "max_tokens": 20, "messages": M,
                                                            "stream": True},
                      headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}, timeout=30) as r:
        return [ln for ln in r.iter_lines() if ln]


def _raw_oai(g):
    with httpx.stream("POST", g.url + "/v1/chat/completions", json={"model": "loc", "messages": M, "stream": True},
                      headers={"authorization": "Bearer k"}, timeout=30) as r:
        return [ln for ln in r.iter_lines() if ln]


@pytest.mark.parametrize("tail", ["", 'data: {"id":"c1","object":"chat.comp', _ERR, _ERR + _oai({"content": "more"})
                                  + _oai({}, "stop") + "data: [DONE]\n\n"])
def test_an_openai_stream_cut_or_failed_after_relayed_chunks(two_tier, openai_up, tail):
    g = _g(two_tier)
    head = _oai({"role": "assistant", "content": "hel"}) + _oai({"content": "lo"})
    body, cut = head + tail, (len(head),)  # (the answer's start relayed before the end comes)
    openai_up.script(Raw(body=body, content_type="text/event-stream", split=cut))
    with pytest.raises(openai.APIError):
        for _ in oai(g).chat.completions.create(model="loc", messages=M, stream=True):
            pass
    openai_up.script(Raw(body=body, content_type="text/event-stream", split=cut))
    lines = _raw_oai(g)
    datas = [ln for ln in lines if ln.startswith("data: ")]
    assert not any("more" in ln for ln in datas), lines  # (nothing after the error)
    assert sum('"error"' in ln for ln in datas) == 1, lines
    assert all(ln.startswith(("data: ", "event: ", ":")) for ln in lines), lines


@pytest.mark.parametrize("tail", ["", "event: content_block_delta\ndata: {\"type\": \"content_blo",
                                  _ev("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}),
                                  _ev("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
                                  + _ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta",
                                                                                      "text": "more"}})
                                  + _ev("message_stop", {})])
def test_an_anthropic_stream_cut_or_failed_after_relayed_events(two_tier, anthropic_up, tail):
    g = _g(two_tier)
    head = ANT_NO_STOP.split("event: content_block_stop")[0]  # (a block open, no message_delta)
    anthropic_up.script(Raw(body=head + tail, content_type="text/event-stream", split=(len(head.encode()),)))
    lines = _raw_ant(g)
    events = [ln.removeprefix("event: ") for ln in lines if ln.startswith("event: ")]
    assert events[-1] == "error" and events.count("error") == 1, events
    assert "message_start" not in events[1:] and not any("more" in ln for ln in lines), lines
