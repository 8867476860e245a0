"""What an OpenAI-format body tells its upstream it may write, against what a budget reserved (review35c).

- A Chat Completions body may carry both `max_completion_tokens` and `max_tokens`. The gateway reads the first (as
  OpenAI, vLLM and llama.cpp do) and reserved that; the body went upstream as written, and an upstream that reads
  `max_tokens` (TGI, huggingface/text-generation-inference#2925) wrote up to the other: `max_completion_tokens: 16,
  max_tokens: 100000` reserved 16 tokens of answer and allowed 100,000.
- A call lowered to its model's `max_output_tokens` (session 35, costs7) was re-encoded from the canonical request:
  the client's `max_completion_tokens` went out as `max_tokens`, which OpenAI's reasoning models refuse (400), and
  the forwarded fields (`seed` here) were dropped.

An OpenAI-compatible frontier model on the upstream double, a $1 budget; the official openai SDK."""

from __future__ import annotations

from tests.doubles import Reply
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config

MSG = [{"role": "user", "content": "q"}]


def _config(openai_up, ceiling: int | None = None) -> dict:  # noqa: F811
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["models"]["frontier"]["price"] = {"input": 3, "output": 15}
    if ceiling is not None:
        cfg["models"]["frontier"]["max_output_tokens"] = ceiling
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 1.0}]}
    return cfg


def test_both_output_fields_say_at_most_what_was_reserved(gateway, openai_up):  # noqa: F811
    g = gateway(_config(openai_up))
    openai_up.default = Reply(text="hi", usage=(10, 5))
    r = oai(g).chat.completions.create(model="main", messages=MSG, max_completion_tokens=16,
                                       extra_body={"max_tokens": 100_000})
    assert r.choices[0].message.content == "hi"
    body = openai_up.requests[-1].body
    # Before: {'max_completion_tokens': 16, 'max_tokens': 100000} (16 tokens reserved)
    assert body["max_completion_tokens"] == 16 and body["max_tokens"] == 16, body
    # a lower max_tokens beside it is the client's and only tighter: kept
    oai(g).chat.completions.create(model="main", messages=MSG, max_completion_tokens=64, extra_body={"max_tokens": 8})
    body = openai_up.requests[-1].body
    assert body["max_completion_tokens"] == 64 and body["max_tokens"] == 8, body


def test_a_call_lowered_to_its_ceiling_keeps_the_clients_field_and_forwarded_fields(gateway, openai_up):  # noqa: F811
    g = gateway(_config(openai_up, ceiling=8192))
    openai_up.default = Reply(text="hi", usage=(10, 5))
    oai(g).chat.completions.create(model="main", messages=MSG, max_completion_tokens=50_000, seed=7)
    body = openai_up.requests[-1].body
    # Before: {'max_tokens': 8192} and no seed (re-encoded: a reasoning model answers 400 to `max_tokens`)
    assert body.get("max_completion_tokens") == 8192 and "max_tokens" not in body, body
    assert body.get("seed") == 7, body
    oai(g).chat.completions.create(model="main", messages=MSG, max_tokens=20_000)  # the older field: kept as such
    body = openai_up.requests[-1].body
    assert body.get("max_tokens") == 8192 and "max_completion_tokens" not in body, body


def test_unchanged_below_the_ceiling(gateway, openai_up):  # noqa: F811
    """The guard: a body within every bound goes upstream as the client wrote it."""
    g = gateway(_config(openai_up, ceiling=8192))
    openai_up.default = Reply(text="hi", usage=(10, 5))
    oai(g).chat.completions.create(model="main", messages=MSG, max_completion_tokens=300, seed=3)
    body = openai_up.requests[-1].body
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body and body["seed"] == 3, body


def test_a_null_cap_goes_upstream_as_the_reserved_one(gateway, openai_up):  # noqa: F811
    """`"max_tokens": null` is no cap (decoded as unset): the budget reserved `default_max_output_tokens` (4,096) and
    the body, which named the field, went upstream without a cap (an OpenAI upstream writes until its own limit:
    N such requests in flight overspend by N times the difference)."""
    g = gateway(_config(openai_up))
    openai_up.default = Reply(text="hi", usage=(10, 5))
    oai(g).chat.completions.create(model="main", messages=MSG, extra_body={"max_tokens": None})
    body = openai_up.requests[-1].body
    # Before: {'max_tokens': None} and no max_completion_tokens. The field is the provider's `max_tokens_field`
    # (maxfield35): `max_tokens` for this loopback URL, `max_completion_tokens` where configured (api.openai.com's)
    assert body.get("max_tokens") == 4096 and "max_completion_tokens" not in body, body
    cfg = _config(openai_up)
    cfg["providers"]["cloud"]["max_tokens_field"] = "max_completion_tokens"
    oai(gateway(cfg)).chat.completions.create(model="main", messages=MSG, extra_body={"max_tokens": None})
    body = openai_up.requests[-1].body
    assert body.get("max_completion_tokens") == 4096 and body.get("max_tokens") is None, body
