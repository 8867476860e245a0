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

from tierwise.canonical import TextBlock, Usage

log = logging.getLogger("tierwise.pricing")

MILLION = 1_000_000


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)
    cache_read: float | None = Field(None, ge=0, description="default: the input price")
    cache_write: float | None = Field(None, ge=0, description="default: the input price")
    cache_write_1h: float | None = Field(None, ge=0, description="a one-hour cache write (Anthropic's `ttl: 1h`); "
                                         "default: twice the input price, as Anthropic bills it")


ZERO = Price()


def cost(price: Price | None, usage: Usage) -> float | None:
    """USD for `usage` at `price`; None when the price is unknown."""
    if price is None:
        return None
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
    return usd / MILLION


def hour_write_ratio(price: Price | None) -> float:
    """A one-hour cache write's price over the input price (2 by default): what a reservation's input is priced up
    by when the request asks for such writes (`asks_hour_cache`)."""
    if price is None or price.input <= 0:
        return 1.0
    hour = 2 * price.input if price.cache_write_1h is None else price.cache_write_1h
    return max(1.0, hour / price.input)


def _hour(cc: Any) -> bool:
    return type(cc) is dict and cc.get("ttl") == "1h"


def asks_hour_cache(req: Any) -> bool:
    """Whether a request marks part of its prompt for Anthropic's one-hour cache (`cache_control.ttl: "1h"`, at the
    top level, on a system, tool or message block): its input may be billed at twice the input price. The body
    forwarded as sent when there is one (every block type), else the canonical text blocks."""
    body = req.source_body
    if body is not None:  # (a loop, not a list of parts: a 500-turn conversation is read on each admission)
        if _hour(body.get("cache_control")):
            return True
        for k in ("system", "tools", "messages"):
            v = body.get(k)
            if type(v) is not list:
                continue
            for p in v:
                if type(p) is not dict:
                    continue
                if "cache_control" in p and _hour(p["cache_control"]):
                    return True
                c = p.get("content") if k == "messages" else None
                if type(c) is list:
                    for b in c:
                        if type(b) is dict and "cache_control" in b and _hour(b["cache_control"]):
                            return True
        return False
    if _hour(req.extra.get("cache_control")):
        return True
    return any(b.extra and _hour(b.extra.get("cache_control"))
               for b in [*req.system, *(b for m in req.messages for b in m.content if type(b) is TextBlock)])


# genai-prices names providers by id; a `kind: openai` provider may be any compatible host,
# so its models are looked up without a provider id (matched by model name).
_PROVIDER_IDS = {"anthropic": "anthropic"}


class Pricer:
    """Looks up remote model prices in genai-prices; remembers what it found."""

    def price_for(self, model_id: str, provider_kind: str | None = None) -> Price | None:
        return _lookup(model_id, _PROVIDER_IDS.get(provider_kind or ""))


@lru_cache(maxsize=512)
def _lookup(model_id: str, provider_id: str | None) -> Price | None:
    try:
        from genai_prices import Usage as GUsage
        from genai_prices import calc_price
    except ImportError:  # pragma: no cover - it is a dependency
        return None

    # Priced on a small sample so the base tier applies; genai-prices counts cached tokens
    # inside input_tokens, so a cache rate is asked for with input == cached.
    n = 1000

    def rate(**tokens: int) -> float:
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
        log.info("no price data for model %r; its cost is recorded as unknown (set `price` in the config)", model_id)
        return None
    except Exception as e:  # genai-prices raises various errors for unknown models
        log.info("no price data for model %r (%s); set `price` in the config", model_id, type(e).__name__)
        return None
