"""Anthropic bills a five-minute cache write at 1.25x the input price. Before (session 30, costs2):
- a configured `price` without `cache_write` counted every write at the input price: a client marking a new long
  prompt for the cache on each request spent 1.25x what its budget counted;
- the reservation priced the input of a request marking a five-minute write at the input price: two such requests in
  flight were both admitted under an `admit: fits` budget they overspent together;
- a one-hour mark on a text block inside a `tool_result`'s content was not found: its input was reserved at 1x, not
  the one-hour write's 2x.
"""

from __future__ import annotations

import pytest

from tests.budgets.frontier_spend import answered_until_refused, frontier_config, second_of_two, used
from tests.doubles import Delay, Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)

WRITES = 100_000
BILLED = (10 * 3 + 10 * 15 + WRITES * 3.75) / 1e6  # Anthropic's bill for one answer writing WRITES tokens: $0.37518


def test_five_minute_writes_are_counted_at_anthropics_price(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up))
    anthropic_up.default = Reply(text="ok", usage=(10, 10), cache_write_tokens=WRITES)
    answered = answered_until_refused(g, lambda i: {
        "model": "main", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "text", "text": f"a long document {i}", "cache_control": {"type": "ephemeral"}}]}]})
    counted = used(g)
    # Before: 4 answered, $1.50 billed, $1.20 counted (writes at $3 per million, not $3.75).
    assert answered == 3, f"{answered} answered: ${answered * BILLED:.4f} billed, ${counted:.4f} counted of $1"
    assert counted == pytest.approx(answered * BILLED)


def test_a_request_marking_a_five_minute_write_reserves_its_input_at_the_write_price(
        gateway, openai_up, anthropic_up):  # noqa: F811
    """450,000 bytes: about 150,000 tokens reserved. At the input price $0.45 each (both fit a $1 budget, $1.13
    billed); at the write price $0.5625 each: the second is refused while the first is in flight."""
    g = gateway(frontier_config(openai_up, anthropic_up, admit="fits"))
    anthropic_up.default = Delay(3, Reply(text="ok", usage=(10, 10), cache_write_tokens=150_000))
    block = {"type": "text", "text": "word " * 90_000, "cache_control": {"type": "ephemeral"}}
    second = second_of_two(g, anthropic_up, [{"role": "user", "content": [block]}])
    assert second == "429", f"both admitted: ${2 * (150_000 * 3.75 + 180) / 1e6:.2f} billed of a $1 budget"


def test_a_one_hour_mark_inside_a_tool_result_is_reserved_at_its_price(gateway, openai_up, anthropic_up):  # noqa: F811
    """300,000 bytes (about 100,000 tokens) in a tool result marked for the one-hour cache: $0.30 each at the input
    price (both admitted, $1.20 billed), $0.60 at the one-hour write's."""
    g = gateway(frontier_config(openai_up, anthropic_up, admit="fits"))
    anthropic_up.default = Delay(3, Reply(text="ok", usage=(10, 10), cache_write_tokens=100_000,
                                          cache_write_1h_tokens=100_000))
    result = {"type": "tool_result", "tool_use_id": "toolu_1",
              "content": [{"type": "text", "text": "word " * 60_000, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}
    messages = [{"role": "user", "content": "read the file"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read", "input": {}}]},
                {"role": "user", "content": [result]}]
    second = second_of_two(g, anthropic_up, messages)
    assert second == "429", f"both admitted: ${2 * (100_000 * 6 + 180) / 1e6:.2f} billed of a $1 budget"


def test_where_a_cache_mark_is_found():
    from types import SimpleNamespace

    from tierwise.canonical import Message, Request, TextBlock, ToolResultBlock
    from tierwise.pricing import FIVE, HOUR, NO_MARK, cache_mark

    hour, five = {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral"}

    def result(cc):
        return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                             "content": [{"type": "text", "text": "x", "cache_control": cc}]}]}

    for body, want in (({"messages": [{"role": "user", "content": "x"}]}, NO_MARK),
                       ({"cache_control": five}, FIVE),
                       ({"messages": [result(five)]}, FIVE),
                       ({"messages": [result(hour)]}, HOUR),
                       ({"system": [{"type": "text", "text": "s", "cache_control": five}],
                         "messages": [result(hour)]}, HOUR),
                       ({"tools": [{"name": "t", "cache_control": five}]}, FIVE)):
        assert cache_mark(SimpleNamespace(source_body=body)) == want, body
    nested = Request(model="m", messages=[Message("user", [ToolResultBlock("t", [TextBlock("x", extra={"cache_control": hour})])])])
    assert cache_mark(nested) == HOUR


def test_a_configured_anthropic_price_writes_at_one_and_a_quarter():
    from tierwise.pricing import Price, anthropic_price, write_ratios

    assert anthropic_price(Price(input=3, output=15)).cache_write == pytest.approx(3.75)
    assert anthropic_price(Price(input=3, cache_write=3.0)).cache_write == 3.0  # as configured
    assert write_ratios(Price(input=3, cache_write=3.75)) == (1.25, 2.0)
