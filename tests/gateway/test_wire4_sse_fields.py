"""wire4: an upstream's SSE comments, `id:` and `retry:` lines, relayed as sent by a same-format route.

An OpenAI client of an OpenAI-format upstream gets the upstream's own bytes (pass-through). Comment lines and
the `id`/`retry` fields went with them, unread and unscrubbed: any text a hostile or misconfigured upstream
put there (here a key it echoed), a `retry` that sets a browser EventSource's reconnection delay, ids it
would send back as Last-Event-ID. Only each event's `event` and `data` lines go on now."""

from __future__ import annotations

import json

from tests.doubles.script import Raw
from tests.gateway.conftest import oai


def _chunk(delta: dict, finish: str | None = None) -> str:
    return "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"


def test_comments_ids_and_retry_lines_do_not_reach_the_client(two_tier, openai_up):
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})
    stream = (": echo Authorization: Bearer sk-upstream-secret-0123456789abcdef\nretry: 1\nid: 42\n"
              + _chunk({"role": "assistant", "content": "hel"}) + "id: 43\n" + _chunk({"content": "lo"})
              + _chunk({}, "stop") + ": bye\ndata: [DONE]\n\n")
    openai_up.script(Raw(body=stream, content_type="text/event-stream"))
    with oai(g).chat.completions.with_streaming_response.create(
            model="main", stream=True, messages=[{"role": "user", "content": "hi"}]) as resp:
        lines = [line for line in resp.iter_lines() if line]
    assert all(line.startswith(("data: ", "event: ")) for line in lines), lines
    assert "sk-upstream-secret" not in "\n".join(lines)
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                   for line in lines if line != "data: [DONE]" and json.loads(line[6:]).get("choices"))
    assert text == "hello" and lines[-1] == "data: [DONE]"
