"""Shared by the tests of what an Anthropic frontier model's answers spend of a budget (cache writes, web search
fees): a two-tier config whose route `main` reaches only the frontier ($3/$15 per million, no `cache_write`), the
requests answered in a row until the budget refuses (or of a number asked through the openai SDK), the budget's spend
once nothing is in flight, the second of two requests in flight, and a request held upstream while a test asks again
(and a second request answered meanwhile)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import anthropic
import openai

from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config, wait_for


def frontier_config(openai_up, anthropic_up, usd: float = 1.0, **budgets) -> dict:
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"]["price"] = {"input": 3, "output": 15}  # no cache_write: Anthropic's 1.25x applies
    cfg["budgets"] = {**budgets, "limits": [{"name": "cap", "usd": usd}]}
    return cfg


def used(g) -> float:
    """The budget's USD used once no reservation is in flight."""

    def status() -> dict:
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    wait_for(lambda: status()["reservations_in_flight"] == 0)
    return status()["budgets"][0]["usd_used"]


def second_of_two(g, anthropic_up, messages: list, max_tokens: int = 10, **kw: Any) -> str:
    """The second of two concurrent requests' answer, "ok" or "429" (the first held at the upstream meanwhile)."""
    return second_of_two_calls(
        anthropic_up, lambda: ant(g).messages.create(model="main", max_tokens=max_tokens, messages=messages, **kw),
        anthropic.RateLimitError)


def second_allowing_sixty_searches(gateway, openai_up, anthropic_up, monkeypatch, messages: list,
                                   **limit: Any) -> str:
    """The second of two requests in flight that each allow 60 web searches ($0.60 of fees) under `admit: fits` $1
    (`limit`: more keys of the budget's limit): the fee alone is reserved, the searches' results as input are set
    to none (60 searches' results alone would not fit the dollar). Also checks the tool reached the upstream."""
    from tests.doubles import Delay, Reply

    monkeypatch.setattr("tierwise.budgets.controller.SEARCH_RESULT_TOKENS", 0)
    cfg = frontier_config(openai_up, anthropic_up, admit="fits")
    cfg["budgets"]["limits"][0].update(limit)
    cfg["server"]["forwarding"] = {"server_tools": ["web_search_*"]}
    g = gateway(cfg)
    anthropic_up.default = Delay(3, Reply(text="found it", usage=(1000, 100), web_searches=60))
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 60}]
    second = second_of_two(g, anthropic_up, messages, max_tokens=100, tools=tools)
    assert anthropic_up.requests[0].body["tools"][0]["max_uses"] == 60  # (the tool reached the upstream)
    return second


def second_of_two_calls(upstream, call: Callable[[], object], refused: type[Exception]) -> str:
    """`call` made twice at once, the first held at `upstream` meanwhile: the second's answer, "ok" or "429"
    (`refused` raised); the first must be answered."""

    def ask() -> str:
        try:
            call()
            return "ok"
        except refused:
            return "429"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ask)
        assert wait_for(lambda: len(upstream.requests) == 1)
        second = pool.submit(ask).result()
        assert first.result() == "ok"
    return second


@contextmanager
def held_request(g, anthropic_up, max_tokens: int = 100_000) -> Iterator[list[Any]]:
    """A request on `main` asking `max_tokens` of answer, its upstream answer ("long") held until the block ends; the
    block runs once the upstream has it. The list yielded holds the request's answer after the block."""
    from tests.doubles import Gate, Reply

    release = threading.Event()
    anthropic_up.default = Gate(release, Reply(text="long", usage=(10, 5)))
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(ant(g).messages.create(
        model="main", max_tokens=max_tokens, messages=[{"role": "user", "content": "q"}], timeout=60)))
    t.start()
    try:
        assert wait_for(lambda: len(anthropic_up.requests) == 1)
        yield out
    finally:
        release.set()
        t.join(30)


def second_answered_beside_held(g, anthropic_up, sent_max_tokens: int) -> None:
    """While a request asking 100,000 tokens of answer is held upstream, a second one asking 10 is answered (the
    budget is not held by the first's reservation); the first is answered too, sent upstream with `sent_max_tokens`."""
    from tests.doubles import Reply

    with held_request(g, anthropic_up) as out:
        anthropic_up.default = Reply(text="second", usage=(10, 5))
        # Before: anthropic.RateLimitError "budget 'cap' is held by requests in flight ($1.5000 reserved ...)"
        second = ant(g).messages.create(model="main", max_tokens=10, messages=[{"role": "user", "content": "q"}],
                                        timeout=60).content[0]
        assert isinstance(second, anthropic.types.TextBlock) and second.text == "second"
    assert out and out[0].content[0].text == "long"
    assert anthropic_up.requests[0].body["max_tokens"] == sent_max_tokens


def answered_until_refused(g, request: Callable[[int], dict[str, Any]], stream: bool = False, most: int = 10) -> int:
    """How many of `most` requests in a row (`request(i)`: the SDK's keyword arguments) were answered before the
    first 429, streamed or not."""
    c = ant(g)
    for i in range(most):
        try:
            if stream:
                with c.messages.stream(**request(i)) as s:
                    s.get_final_message()
            else:
                c.messages.create(**request(i))
        except anthropic.RateLimitError:
            return i
    return most


def answered_of(g, times: int, refused: type[Exception] = openai.RateLimitError, **request: Any) -> int:
    """How many of `times` chat requests through the openai SDK (`request`: its keyword arguments beside `model="main"`;
    a stream read to its end) were answered, a `refused` one counting none."""
    client = oai(g)
    answered = 0
    for _ in range(times):
        try:
            r = client.chat.completions.create(model="main", **request)
            if request.get("stream"):
                for _ in r:
                    pass
            answered += 1
        except refused:
            pass
    return answered
