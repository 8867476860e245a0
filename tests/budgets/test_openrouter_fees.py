"""OpenRouter bills fees no token count shows: its web plugin ($4 per 1,000 results: $0.02 a call at its default 5, on
every call of an `:online` model, or where a client's `plugins` reach it) and says what it billed in `usage.cost`.
Before session 32 (costs4) neither was read: a budget counted a cheap model's tokens only, a hundredth of the bill.
Now a call counts the larger of its tokens' price and the reported cost, and an `:online` model's fee is priced
(`price.request`, $0.02 by default) and reserved at admission."""

from __future__ import annotations

import pytest

from tests.budgets.frontier_spend import second_of_two_calls, used
from tests.doubles import Delay, Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config

TOKENS = (1000 * 0.15 + 100 * 0.6) / 1e6  # one answer's tokens at gpt-4o-mini's price: $0.00021


def openrouter_config(openai_up, model: str, usd: float, **budgets) -> dict:  # noqa: F811
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"].update(model=model, price={"input": 0.15, "output": 0.6})
    cfg["budgets"] = {**budgets, "limits": [{"name": "cap", "usd": usd}]}
    return cfg


def answered_in_a_row(g, stream: bool, **kw) -> int:
    import openai

    c = oai(g)
    for i in range(20):
        try:
            if stream:
                for _ in c.chat.completions.create(model="main", max_tokens=100, stream=True, messages=[
                        {"role": "user", "content": f"news {i}"}], stream_options={"include_usage": True}, **kw):
                    pass
            else:
                c.chat.completions.create(model="main", max_tokens=100, messages=[
                    {"role": "user", "content": f"news {i}"}], **kw)
        except openai.RateLimitError:
            return i
    return 20


@pytest.mark.parametrize("stream", [False, True])
def test_the_cost_openrouter_reports_is_counted(gateway, openai_up, stream):  # noqa: F811
    """A client's `plugins` (the operator lets them through) run OpenRouter's web plugin at 10 results: $0.04 a call,
    reported in `usage.cost`. $0.10 budget, default `admit: remaining`."""
    cfg = openrouter_config(openai_up, "openai/gpt-4o-mini", 0.10)
    cfg["server"]["forwarding"] = {"openai_fields": ["plugins"]}
    g = gateway(cfg)
    billed = 0.04 + TOKENS
    openai_up.default = Reply(text="the news", usage=(1000, 100), cost=billed)
    n = answered_in_a_row(g, stream, extra_body={"plugins": [{"id": "web", "max_results": 10}]})
    assert openai_up.requests[0].body["plugins"] == [{"id": "web", "max_results": 10}]
    counted = used(g)
    # Before: 20 answered (the loop's end), $0.8042 billed, $0.0042 counted (the tokens).
    assert n == 3, f"{n} answered: ${n * billed:.4f} billed, ${counted:.4f} counted of $0.10"
    assert counted == pytest.approx(3 * billed)


def test_an_online_models_fee_is_counted_without_a_report(gateway, openai_up):  # noqa: F811
    """An `:online` model's web plugin fee ($0.02 a call) when the host reports no cost: priced by `price.request`."""
    g = gateway(openrouter_config(openai_up, "openai/gpt-4o-mini:online", 0.05))
    openai_up.default = Reply(text="the news", usage=(1000, 100))
    n = answered_in_a_row(g, False)
    # Before: 20 answered, $0.4042 billed, $0.0042 counted.
    assert n == 3
    assert used(g) == pytest.approx(3 * (0.02 + TOKENS))


def test_an_online_models_fee_is_reserved(gateway, openai_up):  # noqa: F811
    """`admit: fits` $0.03: two `:online` calls in flight, each $0.02 of fee and ~$0.0001 of tokens."""
    import openai

    g = gateway(openrouter_config(openai_up, "openai/gpt-4o-mini:online", 0.03, admit="fits"))
    openai_up.default = Delay(3, Reply(text="the news", usage=(1000, 100), cost=0.02 + TOKENS))
    second = second_of_two_calls(openai_up, lambda: oai(g).chat.completions.create(
        model="main", max_tokens=100, messages=[{"role": "user", "content": "news"}]), openai.RateLimitError)
    assert second == "429", "both admitted: $0.0404 billed of a $0.03 budget"


@pytest.mark.parametrize("usage, billed", [
    ({"cost": 0.5}, 0.5),
    ({"cost": -3}, 0.0),
    ({"cost": float("nan")}, 0.0),
    ({"cost": "0.5"}, 0.0),
    ({"cost": True}, 0.0),
    ({"cost": 1e308}, 1000.0),
    ({"cost": 0.01, "is_byok": True, "cost_details": {"upstream_inference_cost": 0.2}}, 0.21),
    ({"cost": 0.01, "is_byok": False, "cost_details": {"upstream_inference_cost": 0.2}}, 0.01),
    ({"cost": 0.01, "is_byok": True, "cost_details": {"upstream_inference_cost": -1}}, 0.01),
])
def test_a_reported_cost_is_believed_within_bounds(usage, billed):
    from tierwise.pricing import Price, cost
    from tierwise.wire.openai_chat.response import usage_in

    u = usage_in({"prompt_tokens": 1000, "completion_tokens": 100, **usage})
    assert u.billed_usd == pytest.approx(billed)
    # (believed up to the tokens' price plus $10 of fees: review32e)
    assert cost(Price(input=0.15, output=0.6), u) == pytest.approx(min(max(billed, TOKENS), TOKENS + 10))
    # (a model genai-prices does not know: up to its tokens at $150 / $600 per million plus $10, session 33)
    assert cost(None, u) == (pytest.approx(min(billed, 0.21 + 10)) if billed else None)


@pytest.mark.parametrize("results", [10, 10.0])
def test_a_clients_web_plugin_is_reserved(gateway, openai_up, results):  # noqa: F811
    """`admit: fits` $0.05: two requests in flight asking OpenRouter's web plugin for 10 results ($0.04 each); 10.0
    is 10 to the upstream (the body is forwarded as sent): it reserved the default 5 before review32e."""
    import openai

    cfg = openrouter_config(openai_up, "openai/gpt-4o-mini", 0.05, admit="fits")
    cfg["server"]["forwarding"] = {"openai_fields": ["plugins"]}
    g = gateway(cfg)
    openai_up.default = Delay(3, Reply(text="the news", usage=(1000, 100), cost=0.04 + TOKENS))
    second = second_of_two_calls(openai_up, lambda: oai(g).chat.completions.create(
        model="main", max_tokens=100, messages=[{"role": "user", "content": "news"}],
        extra_body={"plugins": [{"id": "web", "max_results": results}]}), openai.RateLimitError)
    assert openai_up.requests[0].body["plugins"] == [{"id": "web", "max_results": results}]
    assert second == "429", "both admitted: $0.0804 billed of a $0.05 budget"


def test_the_plugin_fee_reserved():
    from types import SimpleNamespace

    from tierwise.pricing import MAX_SEARCHES, plugin_fee

    def fee(plugins, body: bool = True) -> float:
        req = SimpleNamespace(source_body={"plugins": plugins} if body else None, extra={"plugins": plugins})
        return plugin_fee(req)

    assert fee([{"id": "web"}]) == pytest.approx(0.02)  # (5 results by default)
    assert fee([{"id": "web", "max_results": 10}], body=False) == pytest.approx(0.04)  # (a re-encoded body's extra)
    assert fee([{"id": "web", "max_results": 10**9}]) == pytest.approx(MAX_SEARCHES * 0.004)
    assert fee([{"id": "web", "max_results": "9"}, {"id": "file-parser"}, "web"]) == pytest.approx(0.02)
    assert fee({"id": "web"}) == 0.0
    # (whole floats are the integers they name, as the upstream reads them: review32e)
    assert fee([{"id": "web", "max_results": 1000.0}]) == pytest.approx(MAX_SEARCHES * 0.004)
    assert fee([{"id": "web", "max_results": 1e30}]) == pytest.approx(MAX_SEARCHES * 0.004)
    assert fee([{"id": "web", "max_results": 2.5}]) == fee([{"id": "web", "max_results": float("nan")}]) == \
        fee([{"id": "web", "max_results": float("inf")}]) == fee([{"id": "web", "max_results": -10.0}]) == \
        pytest.approx(0.02)


def test_whole_float_bounds_of_server_tools_are_reserved():
    """Anthropic reads `max_uses: 1000.0` as 1,000 (the body is forwarded as sent): it reserved the unsaid 10 searches
    and 10 fetches of 25,000 tokens before review32e."""
    from types import SimpleNamespace

    from tierwise.pricing import fetched_tokens_allowed, searches_allowed

    def req(*tools):
        return SimpleNamespace(source_body={"tools": list(tools)})

    assert searches_allowed(req({"type": "web_search_20250305", "name": "web_search", "max_uses": 1000.0})) == 1000
    assert searches_allowed(req({"type": "web_search_20250305", "name": "web_search", "max_uses": 1e12})) == 1000
    assert fetched_tokens_allowed(req({"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 20.0,
                                       "max_content_tokens": 100000.0})) == 2_000_000


@pytest.mark.parametrize("usage, counted", [
    ((1000, 100, 1000.0), TOKENS + 10),  # (a look-alike host's cost: $1,000 counted before)
    ((0, 0, 1000.0), 10.0),  # (no tokens at all)
    ((1000, 100, 0.04 + TOKENS), 0.04 + TOKENS),  # (a web plugin's 10 results: believed)
    ((1000, 100, 8 * TOKENS), 8 * TOKENS),  # (a host dearer than the listed price, or BYOK: believed)
    ((10_000_000, 1_000_000, 200.0), 10 * 2.1),  # (a dear call: ten times its tokens' price at most)
])
def test_a_reported_cost_is_believed_up_to_its_tokens_price_and_fees(usage, counted):
    """An upstream reports `usage.cost` far above anything its tokens and fees could be billed (a compromised or
    look-alike host, a cost in another unit): believed up to ten times the tokens' price, or the price plus $10."""
    from tierwise.canonical import Usage
    from tierwise.pricing import Price, cost

    inp, out, usd = usage
    assert cost(Price(input=0.15, output=0.6), Usage(input_tokens=inp, output_tokens=out, billed_usd=usd)) == \
        pytest.approx(counted)


def test_one_misreported_cost_does_not_spend_a_teams_day(gateway, openai_up):  # noqa: F811
    """$50 a day; the upstream answers 1,000 + 100 tokens (gpt-4o-mini: $0.0002) and says it billed $1,000."""
    g = gateway(openrouter_config(openai_up, "openai/gpt-4o-mini", 50.0))
    openai_up.default = Reply(text="the news", usage=(1000, 100), cost=1000.0)
    n = answered_in_a_row(g, False)
    # Before: 1 answered, $1,000 counted of the $50 (every later request of the day refused).
    assert n == 5, f"{n} answered, ${used(g):.2f} counted"


def unpriced_config(openai_up, usd: float, **model) -> dict:  # noqa: F811
    cfg = openrouter_config(openai_up, "acme/unlisted-model-7b", usd)
    del cfg["models"]["frontier"]["price"]  # (genai-prices does not know it either: no price at all)
    cfg["models"]["frontier"].update(model)
    return cfg


def test_an_unpriced_models_misreported_cost_does_not_spend_a_teams_day(gateway, openai_up):  # noqa: F811
    """A model with no price (not in genai-prices, none configured) whose upstream answers 1,000 + 100 tokens and says
    it billed $1,000; $50 a day. Its reported cost is believed up to its tokens at the dearest listed prices
    ($150 / $600 per million: $0.21) plus $10 of fees."""
    g = gateway(unpriced_config(openai_up, 50.0))
    assert g.gateway.deployments["frontier"].price is None
    openai_up.default = Reply(text="the news", usage=(1000, 100), cost=1000.0)
    n = answered_in_a_row(g, False)
    # Before (session 33, costs5): 1 answered, $1,000 counted of the $50.
    assert n == 5, f"{n} answered, ${used(g):.2f} counted"
    assert used(g) == pytest.approx(5 * 10.21)


def test_an_unpriced_models_reported_cost_bound_is_configurable(gateway, openai_up):  # noqa: F811
    """`models.<name>.max_reported_cost`: what one call of a model with no price is counted at most."""
    g = gateway(unpriced_config(openai_up, 1.0, max_reported_cost=0.25))
    openai_up.default = Reply(text="the news", usage=(1000, 100), cost=1000.0)
    assert answered_in_a_row(g, True) == 4
    assert used(g) == pytest.approx(1.0)  # (before: 1 answered, $1,000 counted)


@pytest.mark.parametrize("usage, counted", [
    ((1000, 100, 1000.0), 0.15 + 0.06 + 10),
    ((0, 0, 1000.0), 10.0),
    ((1000, 100, 0.003), 0.003),  # (an honest report: believed)
    ((0, 0, 0.0), None),  # (nothing reported: unknown, as before)
])
def test_an_unpriced_models_reported_cost_is_bounded(usage, counted):
    from tierwise.canonical import Usage
    from tierwise.pricing import cost

    inp, out, usd = usage
    assert cost(None, Usage(input_tokens=inp, output_tokens=out, billed_usd=usd)) == \
        (None if counted is None else pytest.approx(counted))
