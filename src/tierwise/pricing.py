"""Prices per million tokens and the cost of a call.

Remote models are priced from the `genai-prices` package (maintained price data) unless the
config gives a `price`; local models cost what the config says, 0 by default. Rates are
looked up once per model at start-up and reduced to flat per-million-token figures, so
costing a call on the hot path is four multiplications. Tiered prices (e.g. a higher rate
above 200k input tokens) use the base tier: the ledger's figures are then a lower bound
for such very long requests.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tierwise.canonical import OtherBlock, TextBlock, ToolResultBlock, Usage

log = logging.getLogger("tierwise.pricing")

MILLION = 1_000_000


MAX_PRICE = 1e6  # USD per million tokens (a dollar a token), per 1,000 searches or per call: past it, a typo
MIN_TOKEN_PRICE = 1e-3  # USD per million tokens: a configured input or output price below it, not 0, is per token


class Price(BaseModel):
    """USD per million tokens. Each at most MAX_PRICE: before session 34 (costs6) `inf` or `1e308` was taken, every
    cost came out infinite, a settlement's inf − inf made the budget's count NaN, and a $1 budget answered every
    request (tests/budgets/test_price_bounds.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: float = Field(0.0, ge=0, le=MAX_PRICE)
    output: float = Field(0.0, ge=0, le=MAX_PRICE)
    cache_read: float | None = Field(None, ge=0, le=MAX_PRICE, description="default: the input price")
    cache_write: float | None = Field(None, ge=0, le=MAX_PRICE, description="default: the input price (1.25x it "
                                       "for a model of a `kind: anthropic` provider, as Anthropic bills a five-minute "
                                       "write)")
    cache_write_1h: float | None = Field(None, ge=0, le=MAX_PRICE, description="a one-hour cache write (Anthropic's "
                                         "`ttl: 1h`); default: twice the input price, as Anthropic bills it")
    web_search: float | None = Field(None, ge=0, le=MAX_PRICE, description="USD per 1,000 web searches "
                                     "(Anthropic's web search server tool); default: $10 for a `kind: anthropic` "
                                     "provider's model, else 0")
    request: float | None = Field(None, ge=0, le=MAX_PRICE, description="USD per call on top of its tokens (a "
                                  "per-request fee); default: $0.02 for an OpenRouter `:online` model (its web "
                                  "plugin, 5 results at $4 per 1,000), else 0")

ZERO = Price()


def cost(price: Price | None, usage: Usage, unpriced_max: float | None = None) -> float | None:
    """USD for `usage` at `price`, or what the upstream says it billed when that is more (OpenRouter's `usage.cost`:
    its fees are in no token count); None when the price is unknown and the upstream said nothing. `unpriced_max`:
    a model's `max_reported_cost` (what a call of a model with no price is counted at most)."""
    if price is None:
        if not usage.billed_usd:
            return None
        if unpriced_max is not None:
            return min(usage.billed_usd, unpriced_max)
        # Believed up to its tokens at the dearest listed prices plus the dearest fees: before session 33 (costs5)
        # any finite cost up to $1,000 was, and one answer of a misreporting upstream spent a team's day.
        return min(usage.billed_usd, _ceiling(usage))
    cr = price.input if price.cache_read is None else price.cache_read
    cw = price.input if price.cache_write is None else price.cache_write
    usd = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * cr
        + usage.cache_write_tokens * cw
    )
    if usage.cache_write_1h_tokens:  # (of the writes: counted at the one-hour price, not `cache_write`'s)
        hour = 2 * price.input if price.cache_write_1h is None else price.cache_write_1h
        usd += usage.cache_write_1h_tokens * max(0.0, hour - cw)
    if usage.web_searches or price.request or usage.billed_usd:  # (rare: the common call pays three tests)
        return _with_fees(price, usage, usd / MILLION)
    return usd / MILLION


def _ceiling(usage: Usage) -> float:
    """What a call of a model with no price could have been billed at most: its tokens at UNPRICED_CEILING plus the
    dearest fees a call is counted for."""
    p = UNPRICED_CEILING
    tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return (tokens * p.input + usage.output_tokens * p.output) / MILLION + MAX_REPORTED_FEES


def _with_fees(price: Price, usage: Usage, usd: float) -> float:
    if usage.web_searches and price.web_search:
        usd += usage.web_searches * price.web_search / 1000
    if price.request and (usage.input_tokens or usage.output_tokens or usage.cache_read_tokens):  # (a call made)
        usd += price.request
    if usd >= usage.billed_usd:
        return usd
    # A reported cost is believed up to what a call of these tokens could have been billed: REPORTED_OVER_PRICE times
    # their price (another host of the model, BYOK) or their price plus the dearest fees a call is reserved for
    # (MAX_REPORTED_FEES). Before review32e any finite cost up to $1,000 was: one answer of an upstream that misreports
    # (a compromised or look-alike host, a cost in another unit) spent a team's whole day.
    return min(usage.billed_usd, max(usd * REPORTED_OVER_PRICE, usd + MAX_REPORTED_FEES))


def write_ratios(price: Price | None) -> tuple[float, float]:
    """A five-minute and a one-hour cache write's price over the input price (`cache_write`'s, 1 by default; twice
    the input by default): what a reservation's input is priced up by when the request marks part of its prompt for
    the cache (`cache_mark`)."""
    if price is None or price.input <= 0:
        return 1.0, 1.0
    five = price.input if price.cache_write is None else price.cache_write
    hour = 2 * price.input if price.cache_write_1h is None else price.cache_write_1h
    return max(1.0, five / price.input), max(1.0, hour / price.input, five / price.input)


SEARCH_FEE = 10.0  # Anthropic's web search: USD per 1,000 searches
SEARCHES_UNSAID = 10  # searches a request allowing web search without `max_uses` reserves
MAX_SEARCHES = 1000  # web searches one answer is counted at most (providers/usage_bounds.py), and reserved at most
# A reported cost (`Usage.billed_usd`) over the tokens' price is believed up to this many times it, or up to it plus
# the dearest fees one call is counted or reserved for: MAX_SEARCHES searches at SEARCH_FEE ($10; a web plugin's
# MAX_SEARCHES results at $4 per 1,000 are less)
REPORTED_OVER_PRICE = 10
MAX_REPORTED_FEES = MAX_SEARCHES * SEARCH_FEE / 1000
# A model with no price (genai-prices does not list it, the config gives none) has its reported cost believed up to
# its tokens at these prices, the dearest genai-prices lists (o1-pro, USD per million tokens), plus MAX_REPORTED_FEES;
# `models.<name>.max_reported_cost` sets a bound of the operator's instead
UNPRICED_CEILING = Price(input=150.0, output=600.0)
# Input tokens a search's results add to the model's context, reserved per search allowed: Anthropic bills the results
# as input tokens on top of the fee (a search returns several pages of text; only the fee was reserved before session
# 31, costs3: requests in flight allowing searches overspent an `admit: fits` budget by their results, 1.34x)
SEARCH_RESULT_TOKENS = 10_000
# Input tokens a web fetch's page adds, reserved per fetch allowed when its tool names no `max_content_tokens` (an
# estimate: a long PDF is more; `max_content_tokens` is the bound), and per fetch at most
FETCH_RESULT_TOKENS = 25_000
MAX_FETCH_TOKENS = 1_000_000


def anthropic_price(price: Price, searches: bool = True) -> Price:
    """A price for an Anthropic model: a five-minute cache write is billed at 1.25x the input price when the config
    names no `cache_write` (it was counted at the input price: a client marking a new long prompt for the cache on each
    request spent 1.25x what its budget counted), and a web search at $10 per 1,000 (counted nowhere before costs2).
    `searches=False`: a Claude model on an OpenAI-compatible host (OpenRouter), whose web search is not Anthropic's
    server tool, but whose cache writes Anthropic bills as it does its own (session 31, costs3)."""
    update: dict[str, float] = {}
    if price.cache_write is None and price.input > 0:
        update["cache_write"] = 1.25 * price.input
    if price.web_search is None and searches:
        update["web_search"] = SEARCH_FEE
    return price.model_copy(update=update) if update else price


ONLINE_FEE = 0.02  # OpenRouter's web plugin at its default 5 results, $4 per 1,000 results: USD per call
ONLINE = ":online"  # an OpenRouter model id's suffix that runs its web plugin on every call


def online_price(price: Price | None) -> Price | None:
    """The price of an OpenRouter `:online` model (`price`: the config's, else genai-prices' for the id without the
    suffix, the only one it lists): its web plugin's fee per call is added, unless the config names `request`.
    Before session 32 (costs4) the fee was counted nowhere, and such a model's tokens were unpriced: a budget of a
    cheap model spent 100 times its tokens' price in fees."""
    if price is None or price.request is not None:
        return price
    return price.model_copy(update={"request": ONLINE_FEE})


PLUGIN_RESULT_FEE = 0.004  # OpenRouter's web plugin: USD per result ($4 per 1,000)


def plugin_fee(req: Any) -> float:
    """USD the web plugins a request names (`plugins: [{"id": "web", "max_results": N}]`, OpenRouter's; forwarded when
    `server.forwarding.openai_fields` lets `plugins` through) may be billed per call: N results (5 when it names none,
    MAX_SEARCHES at most) at $4 per 1,000. Reserved since session 32 (costs4): before, two requests in flight asking
    10 results each were both admitted under an `admit: fits` $0.05 budget ($0.08 billed)."""
    body = req.source_body
    plugins = (body if body is not None else req.extra).get("plugins")
    if type(plugins) is not list:
        return 0.0
    n = 0
    for p in plugins:
        if type(p) is dict and p.get("id") == "web":
            n += _named(p.get("max_results"), 5, MAX_SEARCHES)
    return n * PLUGIN_RESULT_FEE


def claude_model(model_id: str) -> bool:
    """Whether an OpenAI-compatible host's model id names an Anthropic model (`anthropic/claude-sonnet-4` on
    OpenRouter, `claude-…` behind other routers): its cache writes are billed at Anthropic's prices."""
    return "claude" in model_id.lower()


def searches_allowed(req: Any) -> int:
    """The web searches an Anthropic request lets the model make: the `max_uses` of its web search server tools
    (SEARCHES_UNSAID for one that names none, MAX_SEARCHES at most: what one answer is counted at most). The body
    forwarded as sent when there is one, else the server tools' definitions the re-encoded body carries (`Tool.raw`:
    a body with a system turn mid-conversation, or changed by a policy, reserved no search before review30c)."""
    n = 0
    for t in _server_tools(req, "web_search"):
        # (`max_uses` past MAX_SEARCHES reserved SEARCHES_UNSAID before review30c: 10 reserved, 1,000 counted)
        n += _uses(t)
    return n


def fetched_tokens_allowed(req: Any) -> int:
    """The input tokens the pages an Anthropic request's web fetch server tools may fetch add: per tool, its uses (as
    `searches_allowed` counts a search tool's) times its `max_content_tokens` (FETCH_RESULT_TOKENS when it names none,
    MAX_FETCH_TOKENS at most). A fetch has no fee, but its page is billed as input: nothing of it was reserved before
    session 32 (costs4), and two requests in flight allowing 5 fetches of 20,000-token pages both fitted a $0.50
    `admit: fits` budget ($0.603 billed)."""
    n = 0
    for t in _server_tools(req, "web_fetch"):
        n += _uses(t) * _named(t.get("max_content_tokens"), FETCH_RESULT_TOKENS, MAX_FETCH_TOKENS)
    return n


def _server_tools(req: Any, kind: str) -> list[dict[str, Any]]:
    body = req.source_body
    tools = body.get("tools") if body is not None else [t.raw for t in req.tools if t.raw is not None]
    if type(tools) is not list:
        return []
    return [t for t in tools if type(t) is dict and str(t.get("type", "")).startswith(kind)]


def _uses(tool: dict[str, Any]) -> int:
    return _named(tool.get("max_uses"), SEARCHES_UNSAID, MAX_SEARCHES)


def _named(m: Any, unsaid: int, most: int) -> int:
    """A bound a client names (`max_uses`, `max_results`, `max_content_tokens`), `most` at most; `unsaid` when it names
    none. A whole float is the integer (1000.0 or 1e3: JSON Schema's integers, and the upstream's, for the body is
    forwarded as sent): it reserved `unsaid` before review32e (10 searches reserved, 1,000 allowed; 5 web plugin
    results reserved, 1,000 billed)."""
    if type(m) is float and m.is_integer():  # (not NaN or infinity)
        m = int(min(m, most))
    return min(m, most) if type(m) is int and m > 0 else unsaid


NO_MARK, FIVE, HOUR = 0, 1, 2
MAX_DEPTH = 4  # content lists inside blocks (a tool_result's, a search_result's) read this deep at most


def _mark(cc: Any) -> int:
    if type(cc) is not dict:
        return NO_MARK
    return HOUR if cc.get("ttl") == "1h" else FIVE


def _nested(v: list[Any], depth: int) -> int:
    """The dearest cache mark in a block's `content` list (a `tool_result`'s text blocks may carry `cache_control`:
    they were not read before session 30, costs2), its own nested lists included up to MAX_DEPTH (a document's
    `source.content` too, since review30c)."""
    found = NO_MARK
    for b in v:
        if type(b) is not dict:
            continue
        if "cache_control" in b:
            m = _mark(b["cache_control"])
            if m == HOUR:
                return HOUR
            found = found or m
        if depth < MAX_DEPTH and ("content" in b or "source" in b):
            c = b["content"] if "content" in b else b["source"]
            if type(c) is dict:  # (a document's `source: {type: content}`: its blocks may carry marks)
                c = c.get("content")
            if type(c) is list and c:
                m = _nested(c, depth + 1)
                if m == HOUR:
                    return HOUR
                found = found or m
    return found


def cache_mark(req: Any) -> int:
    """The dearest cache write a request asks for: HOUR (`cache_control.ttl: "1h"`), FIVE (any other
    `cache_control`) or NO_MARK, at the top level or on a system, tool or message block, or a block nested in one's
    `content`: its input may be billed at the write price. The body forwarded as sent when there is one (every block
    type), else the canonical blocks."""
    body = req.source_body
    if body is not None:  # (loops, not a list of parts: a 500-turn conversation is read on each admission)
        found = _mark(body["cache_control"]) if "cache_control" in body else NO_MARK
        for k in ("system", "tools", "messages"):
            v = body.get(k)
            if type(v) is not list:
                continue
            for p in v:
                if type(p) is not dict:
                    continue
                if "cache_control" in p:
                    m = _mark(p["cache_control"])
                    if m == HOUR:
                        return HOUR
                    found = found or m
                if "content" not in p:
                    continue
                c = p["content"]
                if type(c) is not list:
                    continue
                for b in c:  # (a message's blocks, read here: a call per message doubled the search's cost)
                    if type(b) is not dict:
                        continue
                    if "cache_control" in b:
                        m = _mark(b["cache_control"])
                        if m == HOUR:
                            return HOUR
                        found = found or m
                    if "content" in b:
                        x = b["content"]
                    elif "source" in b:  # (a document's `source: {type: content}` holds blocks too)
                        x = b["source"]
                        x = x.get("content") if type(x) is dict else None
                    else:
                        continue
                    if type(x) is list and x:
                        m = _nested(x, 2)
                        if m == HOUR:
                            return HOUR
                        found = found or m
        return found
    found = _mark(req.extra["cache_control"]) if "cache_control" in req.extra else NO_MARK
    # Re-encoded, a server tool's definition and an opaque block (a document, a search result) go upstream as their
    # raw JSON, marks included (not read before review30c: a body with a system turn mid-conversation hid them)
    raws = [t.raw for t in req.tools if t.raw is not None]
    for b in [*req.system, *(b for m in req.messages for b in m.content)]:
        if type(b) is TextBlock and b.extra and "cache_control" in b.extra:
            found = max(found, _mark(b.extra["cache_control"]))
        elif type(b) is ToolResultBlock:
            for x in b.content:
                if type(x) is TextBlock and x.extra and "cache_control" in x.extra:
                    found = max(found, _mark(x.extra["cache_control"]))
                elif type(x) is OtherBlock:
                    raws.append(x.raw)
        elif type(b) is OtherBlock:
            raws.append(b.raw)
        if found == HOUR:
            return HOUR
    return max(found, _nested(raws, 1)) if raws else found


def asks_hour_cache(req: Any) -> bool:
    """Whether a request marks part of its prompt for Anthropic's one-hour cache."""
    return cache_mark(req) == HOUR


# genai-prices names providers by id; a `kind: openai` provider may be any compatible host,
# so its models are looked up without a provider id (matched by model name).
_PROVIDER_IDS = {"anthropic": "anthropic"}


class Pricer:
    """Looks up remote model prices in genai-prices; remembers what it found."""

    def price_for(self, model_id: str, provider_kind: str | None = None, base_url: str | None = None) -> Price | None:
        """`base_url`: an OpenAI-compatible host's, which genai-prices knows by its address (OpenRouter's
        `anthropic/claude-sonnet-4` is priced only there: before session 31, costs3, its cost was unknown)."""
        pid = _PROVIDER_IDS.get(provider_kind or "")
        if pid is None and base_url:
            price = _lookup(model_id, None, base_url)
            if price is not None:
                return price
        return _lookup(model_id, pid)


@lru_cache(maxsize=512)
def _lookup(model_id: str, provider_id: str | None, api_url: str | None = None) -> Price | None:
    try:
        from genai_prices import Usage as GUsage
        from genai_prices import calc_price
    except ImportError:  # pragma: no cover - it is a dependency
        return None

    # Priced on a small sample so the base tier applies; genai-prices counts cached tokens
    # inside input_tokens, so a cache rate is asked for with input == cached.
    n = 1000

    def rate(**tokens: int) -> float:
        if api_url is not None:
            calc = calc_price(GUsage(**tokens), model_ref=model_id, provider_api_url=api_url)
        else:
            calc = calc_price(GUsage(**tokens), model_ref=model_id, provider_id=provider_id)
        return float(calc.total_price) * (MILLION / n)

    try:
        return Price(
            input=rate(input_tokens=n),
            output=rate(output_tokens=n),
            cache_read=rate(input_tokens=n, cache_read_tokens=n),
            cache_write=rate(input_tokens=n, cache_write_tokens=n),
        )
    except LookupError:
        if api_url is not None:  # (a host genai-prices does not know: the model is looked up by its name alone)
            return None
        log.info("no price data for model %r; its cost is recorded as unknown (set `price` in the config)", model_id)
        return None
    except Exception as e:  # genai-prices raises various errors for unknown models
        if api_url is not None:
            return None
        log.info("no price data for model %r (%s); set `price` in the config", model_id, type(e).__name__)
        return None
