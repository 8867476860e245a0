"""Output a reservation did not count: a request without max_tokens (the upstream wrote until its own
limit), an upstream that reports no usage, a stream that fails after part of its answer. Each of them was
billed less than it cost (or nothing), so concurrent requests spent past a shared budget by as many times
(bench/budget_overspend.py: 4.1x and 5.5x a $1 budget across three gateways)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.budgets.conftest import STORE_TIMEOUT_S
from tests.doubles import OpenAIDouble, Raw, Reply, StreamError
from tests.gateway.conftest import oai
from tests.harness import two_tier_config

from .conftest import REDIS_URL

WORDS = " ".join(f"w{i:06d}" for i in range(200))  # 200 pieces of 8 characters (space included): 400 tokens
RESERVED_OUT = 1000


class QuietUpstream(OpenAIDouble):
    """An OpenAI-compatible host that ignores stream_options.include_usage and sends no usage."""

    def render_chunks(self, reply: Reply, rec: Any) -> list[bytes]:
        rec.body = {k: v for k, v in rec.body.items() if k != "stream_options"}
        return super().render_chunks(reply, rec)


@pytest.fixture
def quiet_up():
    d = QuietUpstream()
    d.start()
    yield d
    d.stop()


def make(gateway, openai_up, up, redis_prefix):
    cfg = two_tier_config(openai_up.url, up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["budgets"] = {"store": {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": redis_prefix, "timeout": STORE_TIMEOUT_S},
                      "default_max_output_tokens": RESERVED_OUT,
                      "limits": [{"name": "cap", "usd": 50.0, "tokens": 10_000_000}]}
    return gateway(cfg)


def used(g) -> dict:
    """The budget's row once every reservation is settled."""
    for _ in range(200):
        st = asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)
        if not st["reservations_in_flight"]:
            return st["budgets"][0]  # type: ignore[no-any-return]
        asyncio.run(asyncio.sleep(0.02))
    raise AssertionError("a reservation was never settled")


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_without_max_tokens_is_capped_at_what_its_budget_reserved(gateway, openai_up, redis_prefix,
                                                                            stream):
    openai_up.default = Reply(text="short", usage=(30, 2))
    g = make(gateway, openai_up, openai_up, redis_prefix)
    msgs = [{"role": "user", "content": "write until you stop"}]
    if stream:
        for _ in oai(g).chat.completions.create(model="main", messages=msgs, stream=True):
            pass
    else:
        oai(g).chat.completions.create(model="main", messages=msgs)
    # The upstream is told to stop where the reservation stops (it wrote until its own limit before).
    # (in the provider's max_tokens_field: `max_tokens` for a loopback URL, which Ollama and TGI read;
    # `max_completion_tokens` for api.openai.com, whose reasoning models refuse max_tokens)
    assert openai_up.last.body["max_tokens"] == RESERVED_OUT and "max_completion_tokens" not in openai_up.last.body
    # A client's own max_tokens (or max_completion_tokens) goes as sent.
    oai(g).chat.completions.create(model="main", messages=msgs, max_completion_tokens=7)
    assert openai_up.last.body["max_completion_tokens"] == 7 and "max_tokens" not in openai_up.last.body


def test_a_stream_whose_upstream_reports_no_usage_is_billed_for_what_it_relayed(gateway, openai_up, quiet_up,
                                                                              redis_prefix):
    quiet_up.default = Reply(text=WORDS, usage=(30, 400))
    g = make(gateway, openai_up, quiet_up, redis_prefix)
    for _ in oai(g).chat.completions.create(model="main", max_tokens=500, stream=True,
                                            messages=[{"role": "user", "content": "talk"}]):
        pass
    row = used(g)
    # Billed $0 before: the budget never ran out however much was streamed.
    assert row["tokens_used"] >= 400, row
    assert row["usd_used"] >= 400 * 15 / 1e6, row


def test_an_answer_without_usage_is_billed_for_its_text(gateway, openai_up, redis_prefix):
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "big-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": WORDS}, "finish_reason": "stop"}]}
    openai_up.default = Raw(200, orjson.dumps(body))
    g = make(gateway, openai_up, openai_up, redis_prefix)
    r = oai(g).chat.completions.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "talk"}])
    assert r.choices[0].message.content == WORDS
    row = used(g)
    assert row["tokens_used"] >= 400 and row["usd_used"] >= 400 * 15 / 1e6, row


def test_a_stream_that_fails_after_part_of_its_answer_is_billed_for_that_part(gateway, openai_up, quiet_up,
                                                                             redis_prefix):
    quiet_up.default = StreamError(after_chunks=150, then=Reply(text=WORDS, usage=(30, 400)))
    g = make(gateway, openai_up, quiet_up, redis_prefix)
    with httpx.stream("POST", g.url + "/v1/chat/completions", timeout=10, json={
            "model": "main", "max_tokens": 500, "stream": True,
            "messages": [{"role": "user", "content": "talk"}]}) as r:
        text = "".join(r.iter_lines())
    assert '"error"' in text  # the client got the failure in its own schema
    row = used(g)
    # About 150 words of 8 characters were relayed (the first chunk is the role): billed $0 before.
    assert row["tokens_used"] >= 140 * 8 / 4, row
    assert row["usd_used"] >= 140 * 8 / 4 * 15 / 1e6, row


@pytest.mark.parametrize("stream", [True, False])
def test_every_choice_of_an_answer_without_usage_is_billed(gateway, openai_up, quiet_up, redis_prefix, stream):
    """`n: 3` from an upstream that reports no usage: the relayed characters were counted for the first choice only
    (choices past the first make no stream events), so a third of the output was billed: three gateways on a $1 Redis
    budget, 30 streaming clients asking `n: 3`, spent $2.95 (bench/budget_overspend.py --scenarios n3-no-usage,
    session 31, costs3)."""
    if stream:
        quiet_up.default = Reply(text=WORDS, usage=(30, 1200))
    else:
        body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "big-model",
                "choices": [{"index": i, "message": {"role": "assistant", "content": WORDS}, "finish_reason": "stop"}
                            for i in range(3)]}
        quiet_up.default = Raw(200, orjson.dumps(body))
    g = make(gateway, openai_up, quiet_up, redis_prefix)
    kw: dict[str, Any] = {"model": "main", "max_tokens": 500, "n": 3, "messages": [{"role": "user", "content": "talk"}]}
    if stream:
        seen = {c.index for chunk in oai(g).chat.completions.create(stream=True, **kw) for c in chunk.choices}
    else:
        seen = {c.index for c in oai(g).chat.completions.create(**kw).choices}
    assert seen == {0, 1, 2}
    row = used(g)
    assert row["tokens_used"] >= 3 * 400, row  # (400 and 0.006 before: the first choice's)
    assert row["usd_used"] >= 3 * 400 * 15 / 1e6, row
