"""Anthropic bills a one-hour cache write (`cache_control: {"type": "ephemeral", "ttl": "1h"}`) at twice the input
price; tierwise counted every write at `cache_write` (default: the input price). A client that marks a long, new
prompt for the one-hour cache on each request spent 2x its budget: $2.40 billed while the budget counted $1.20 of
$1 (1.6x with `cache_write: 3.75`). The usage's `cache_creation.ephemeral_1h_input_tokens` are now priced at
`cache_write_1h` (default: twice the input price), in the ledger's cost and the budgets alike.
"""

from __future__ import annotations

import pytest

from tests.budgets.frontier_spend import answered_until_refused, frontier_config, second_of_two, used
from tests.doubles import Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)
from tierwise.canonical import Usage
from tierwise.pricing import Price, cost

WRITES = 100_000
BILLED = (10 * 3 + 10 * 15 + WRITES * 6) / 1e6  # Anthropic's bill for one answer: $0.60018


def test_one_hour_cache_writes_are_priced_at_twice_the_input():
    u = Usage(input_tokens=0, cache_write_tokens=300, cache_write_1h_tokens=100)
    assert cost(Price(input=3, output=15), u) == pytest.approx((200 * 3 + 100 * 6) / 1e6)
    assert cost(Price(input=3, output=15, cache_write=3.75), u) == pytest.approx((200 * 3.75 + 100 * 6) / 1e6)
    assert cost(Price(input=3, cache_write=3.75, cache_write_1h=7), u) == pytest.approx((200 * 3.75 + 700) / 1e6)


@pytest.mark.parametrize("stream", [False, True])
def test_a_budget_counts_one_hour_cache_writes_at_their_price(gateway, openai_up, anthropic_up, stream):  # noqa: F811
    g = gateway(frontier_config(openai_up, anthropic_up))
    anthropic_up.default = Reply(text="ok", usage=(10, 10), cache_write_tokens=WRITES, cache_write_1h_tokens=WRITES)
    hour = {"type": "ephemeral", "ttl": "1h"}
    answered = answered_until_refused(g, lambda i: {
        "model": "main", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "text", "text": f"a long document {i}", "cache_control": hour}]}]}, stream)
    counted = used(g)
    # Before: 4 answered, $2.40 billed, $1.20 counted.
    assert answered == 2, f"{answered} answered: ${answered * BILLED:.4f} billed, ${counted:.4f} counted of $1"
    assert counted == pytest.approx(answered * BILLED)


def test_a_request_asking_for_one_hour_writes_reserves_its_input_at_their_price(
        gateway, openai_up, anthropic_up):  # noqa: F811
    """Before (session 29, review29c) the reservation priced the input at `input` while a one-hour cache write bills
    it at twice that: two such requests in flight each reserved $0.36 of a $1 `admit: fits` budget, were both
    admitted, and billed $1.44. Now each reserves $0.72: the second is refused while the first is in flight."""
    from tests.doubles import Delay

    g = gateway(frontier_config(openai_up, anthropic_up, admit="fits"))
    doc = "word " * 72_000  # 360,000 bytes: about 120,000 tokens reserved
    anthropic_up.default = Delay(3, Reply(text="ok", usage=(10, 10), cache_write_tokens=120_000,
                                          cache_write_1h_tokens=120_000))
    block = {"type": "text", "text": doc, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    second = second_of_two(g, anthropic_up, [{"role": "user", "content": [block]}])
    assert second == "429", f"both admitted: ${2 * (120_000 * 6 + 10 * 3 + 10 * 15) / 1e6:.2f} billed of a $1 budget"


def test_where_a_one_hour_mark_is_found():
    from types import SimpleNamespace

    from tierwise.canonical import Message, Request, TextBlock
    from tierwise.pricing import asks_hour_cache

    hour, five = {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral"}
    msg = {"role": "user", "content": [{"type": "text", "text": "x"}]}
    for body, want in (({"messages": [msg]}, False),
                       ({"cache_control": hour, "messages": [msg]}, True),
                       ({"system": [{"type": "text", "text": "s", "cache_control": hour}]}, True),
                       ({"tools": [{"name": "t", "cache_control": hour}]}, True),
                       ({"messages": [{"role": "user", "content": [{"type": "image", "cache_control": hour}]}]}, True),
                       ({"messages": [{"role": "user", "content": [{"type": "text", "cache_control": five}]}]}, False),
                       ({"messages": "not a list", "system": "text"}, False)):
        assert asks_hour_cache(SimpleNamespace(source_body=body)) is want, body
    canonical = Request(model="m", messages=[Message("user", [TextBlock("x", extra={"cache_control": hour})])])
    assert asks_hour_cache(canonical) and not asks_hour_cache(Request(model="m", messages=[Message("user", [TextBlock("x")])]))
