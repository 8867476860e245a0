"""An answer without usage is billed for what it holds (providers/usage_bounds.py `at_least_relayed`): a non-streamed
answer counted its text only, so one whose answer was a tool call (or reasoning) counted no output at all, in its first
choice as in the others of `n` (a stream counts its tool arguments and reasoning: the two paths disagreed). Before
review31c: 3 choices of 3,200 characters of tool arguments each, 0 output tokens counted."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest

from tests.doubles import Raw
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config

ARGS = json.dumps({"text": "x" * 3186})  # 3,200 characters: about 800 tokens


def _choice(i: int, kind: str) -> dict:
    if kind == "tool":
        msg = {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{i}", "type": "function", "function": {"name": "save", "arguments": ARGS}}]}
    else:  # reasoning, and a one-word answer
        msg = {"role": "assistant", "content": "ok", "reasoning_content": "y" * 3200}
    return {"index": i, "message": msg, "finish_reason": "tool_calls" if kind == "tool" else "stop"}


@pytest.mark.parametrize("kind", ["tool", "reasoning"])
@pytest.mark.parametrize("n", [1, 3])
def test_an_answer_without_usage_is_billed_for_its_tool_calls_and_reasoning(gateway, openai_up, kind, n):  # noqa: F811
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "big-model",
            "choices": [_choice(i, kind) for i in range(n)]}
    openai_up.default = Raw(200, orjson.dumps(body))
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 50.0, "tokens": 10_000_000}]}
    g = gateway(cfg)
    tools = [{"type": "function", "function": {"name": "save", "parameters": {"type": "object"}}}]
    r = oai(g).chat.completions.create(model="main", max_tokens=2000, n=n, tools=tools,
                                       messages=[{"role": "user", "content": "save it"}])
    assert len(r.choices) == n
    st = asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)
    assert st["reservations_in_flight"] == 0
    row = st["budgets"][0]
    assert row["tokens_used"] >= n * 790, row  # the input (a few tokens) and 800 output tokens a choice
    assert row["usd_used"] >= n * 790 * 15 / 1e6, row


def test_a_stream_without_usage_bills_the_reasoning_of_every_choice(gateway, openai_up):  # noqa: F811
    """Choices past the first make no stream events; their content and tool arguments were counted (costs3), their
    reasoning was not (3 choices of 3,200 characters of reasoning: 1 choice counted before review31c)."""
    chunks = []
    for _ in range(8):
        for i in range(3):
            chunks.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                           "choices": [{"index": i, "delta": {"reasoning_content": "y" * 400}, "finish_reason": None}]})
    chunks.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": i, "delta": {"content": "ok"}, "finish_reason": "stop"} for i in range(3)]})
    sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    openai_up.default = Raw(200, sse, content_type="text/event-stream")
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 50.0, "tokens": 10_000_000}]}
    g = gateway(cfg)
    for _ in oai(g).chat.completions.create(model="main", max_tokens=2000, n=3, stream=True,
                                            messages=[{"role": "user", "content": "think"}]):
        pass
    st = asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)
    assert st["reservations_in_flight"] == 0
    assert st["budgets"][0]["tokens_used"] >= 3 * 800, st["budgets"][0]
