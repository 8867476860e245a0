"""An Anthropic model reached through an OpenAI-compatible host (OpenRouter: `anthropic/claude-…` on a `kind: openai`
provider) is billed Anthropic's cache write prices: 1.25x the input for a five-minute write, and OpenRouter reports the
writes in `usage.prompt_tokens_details.cache_write_tokens`. Before session 31 (costs3) that field was not read (the
writes were counted as plain input), a configured `price` without `cache_write` counted them at the input price, and a
request marking its prompt for the cache reserved its input at 1x: a client marking a new long prompt for the cache
on each request spent 1.51x its $1 budget ($1.506 billed, $1.206 counted)."""

from __future__ import annotations

import pytest

from tests.budgets.frontier_spend import second_of_two_calls
from tests.doubles import Delay, Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config, wait_for

WRITES = 100_000
BILLED = (WRITES * 3.75 + 100 * 15) / 1e6  # one answer writing WRITES tokens to the five-minute cache: $0.3765


def openrouter_config(openai_up, **budgets) -> dict:  # noqa: F811
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"].update(model="anthropic/claude-sonnet-4", price={"input": 3, "output": 15})
    cfg["budgets"] = {**budgets, "limits": [{"name": "cap", "usd": 1.0}]}
    return cfg


def marked(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]}]


def test_writes_through_openrouter_are_counted_at_anthropics_price(gateway, openai_up):  # noqa: F811
    import asyncio

    import openai

    g = gateway(openrouter_config(openai_up))
    openai_up.default = Reply(text="ok", usage=(WRITES, 100), cache_write_tokens=WRITES)
    c = oai(g)
    answered = 0
    for i in range(10):
        try:
            c.chat.completions.create(model="main", max_tokens=100, messages=marked(f"a long document {i}"))
        except openai.RateLimitError:
            break
        answered += 1

    def status() -> dict:
        return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)

    wait_for(lambda: status()["reservations_in_flight"] == 0)
    counted = status()["budgets"][0]["usd_used"]
    # Before: 4 answered, $1.506 billed, $1.206 counted (writes at $3 per million, as plain input).
    assert answered == 3, f"{answered} answered: ${answered * BILLED:.4f} billed, ${counted:.4f} counted of $1"
    assert counted == pytest.approx(answered * BILLED)


def test_a_marked_request_through_openrouter_reserves_its_input_at_the_write_price(gateway, openai_up):  # noqa: F811
    """450,000 bytes, about 150,000 tokens: $0.45 each at the input price (both fit `admit: fits` $1, $1.13 billed),
    $0.5625 at the write price (the second refused while the first is in flight)."""
    import openai

    g = gateway(openrouter_config(openai_up, admit="fits"))
    openai_up.default = Delay(3, Reply(text="ok", usage=(150_000, 10), cache_write_tokens=150_000))
    second = second_of_two_calls(
        openai_up, lambda: oai(g).chat.completions.create(model="main", max_tokens=10,
                                                          messages=marked("word " * 90_000)), openai.RateLimitError)
    assert second == "429", "both admitted: $1.13 billed of a $1 budget"


def test_openrouters_claude_is_priced_from_its_address():
    """genai-prices knows OpenRouter's models by the host's address; looked up by name alone, `anthropic/claude-…`
    was not found (its cost unknown, a `usd` budget blind to it, unless the config gave a price). Its cache writes at
    Anthropic's 1.25x; a model OpenRouter does not list, and any model at another address, by its name as before."""
    from tierwise.pricing import Pricer

    p = Pricer()
    assert p.price_for("anthropic/claude-sonnet-4", "openai") is None  # (by name alone)
    got = p.price_for("anthropic/claude-sonnet-4", "openai", "https://openrouter.ai/api/v1")
    assert got is not None and (got.input, got.output, got.cache_write) == (3.0, 15.0, 3.75)
    assert p.price_for("gpt-4o", "openai", "https://openrouter.ai/api/v1") == p.price_for("gpt-4o", "openai")
    assert p.price_for("gpt-4o", "openai", "http://127.0.0.1:8000/v1") == p.price_for("gpt-4o", "openai")
