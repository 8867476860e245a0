"""Attack review of privacy round 11 (session 31, review31d).

- Round 11 read any number right after a currency sign as an amount (`$350 000 x 5`): a phone number written after
  one (`$415-555-2671`, `€(415) 555-2671`, `$+1 415 555 2671`) was no longer found. Only a number shaped like an
  amount is one now (groups of three after the first, cents, or at most nine digits, never a leading 0):
  `bench/privacy_phone_frames.py`, the 92 annotated phone values after `$` without a phone word, 0/92 -> 73/92.

Real HTTP, the official SDKs, recording upstream doubles."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config
from tests.privacy.support import (
    SEEDS,
    ask_remote,
    assert_none_sent,
    echo_placeholders,
    found,
    privacy_config,
)

EMAIL = SEEDS["EMAIL_ADDRESS"]

PHONES_AFTER_A_CURRENCY_SIGN = {
    "dashed": "ok $415-555-2671 thanks",
    "in brackets": "Jane €(415) 555-2671",
    "international": "reach $+1 415 555 2671",
    "international, compact": "reach £+14155552671 today",
    "dotted": "Jane Doe $415.555.2671",
    "spaced": "Jane Doe $415 555 2671",
    "a national number with its 0": "Jane Doe, €0341 8387176, 12 Main St",
    "in pairs": "Jane Doe, €0490 39 07 81, 12 Main St",
    "ten digits": "Jane Doe, $3660170548, 12 Main St",
    "with an extension": "Jane Doe, $259.735.7502x459, 12 Main St",
}


@pytest.mark.parametrize("case", list(PHONES_AFTER_A_CURRENCY_SIGN))
def test_a_phone_after_a_currency_sign_is_found(det, case):
    text = PHONES_AFTER_A_CURRENCY_SIGN[case]
    assert "PHONE_NUMBER" in {e for e, _ in found(det, text)}, found(det, text)


AMOUNTS = {
    "grouped by three with an extension-like x": "The brokerage fee is $350 000 x 5/100 = $17500",
    "grouped by commas": "a house for $1,250,000 and a car",
    "grouped by dots": "kostet €1.250.000 insgesamt",
    "a plain amount": "she paid $4155552 for it",
    "a round range": "budget $8000-10000 per month",
}


@pytest.mark.parametrize("case", list(AMOUNTS))
def test_amounts_after_a_currency_sign_stay_no_phones(det, case):
    assert [f for f in found(det, AMOUNTS[case]) if f[0] == "PHONE_NUMBER"] == []


# Round 11's ratio rule (`2000/1000` is no phone) took any two numbers of up to six digits around a slash: a US number
# split anywhere by one (`4155/552671`, `41555/52671`) passed for a ratio (`bench/privacy_phone_frames.py`: 86/92 ->
# 46/92). A ratio is no phone now only when it has fewer digits than a national number (ten).
PHONES_AS_RATIOS = {"four and six": "Jane Doe, 4155/552671, 12 Main St", "five and five": "Jane Doe, 41555/52671"}


@pytest.mark.parametrize("case", list(PHONES_AS_RATIOS))
def test_a_phone_split_by_a_slash_is_found(det, case):
    text = PHONES_AS_RATIOS[case]
    assert "PHONE_NUMBER" in {e for e, _ in found(det, text)}, found(det, text)


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
def test_a_phone_after_a_currency_sign_does_not_leave(remote):
    g, up = remote
    ask_remote(g, up, "Jane Doe, $415-555-2671, 12 Main St")
    assert_none_sent(up, ["415-555-2671", "5552671"])


# ---------------------------------------------------------------------------- side endpoints: a route inside a route
# `POST /v1/embeddings` and `POST /v1/messages/count_tokens` send the body to the route's first model
# (`first_deployment`, which walks into nested routes). It was screened under the outer route's policy only: a route
# `main = [inner, local]` whose `inner` has `pii: local_only` sent the e-mail address, as written, to `inner`'s remote
# model to embed it or count its tokens (privacy11's RuledRoute guards `complete`/`stream` only).

def _nested(remote: str, up_local: str, up_remote: str, inner_rule: dict[str, str]) -> dict[str, Any]:
    routes = {"main": {"policy": "fallback", "targets": ["inner", "local"], "retries": 0},
              "deep": {"policy": "fallback", "targets": ["main"], "retries": 0}, "inner": ["frontier"]}
    cfg = two_tier_config(up_local, up_remote, remote_kind=remote, routes=routes)
    cfg["privacy"] = {"ner": {"enabled": False}, "classes": {"pii": {}, "secrets": {}},
                      "policy": {"pii": "allow", "secrets": "block"}, "routes": {"inner": inner_rule}}
    return cfg


@pytest.mark.parametrize("model", ["main", "deep"])
def test_embeddings_keep_a_nested_route_s_rule(gateway, openai_up, model):
    g = gateway(_nested("openai", openai_up.url, openai_up.url, {"pii": "local_only"}))
    with pytest.raises(openai.APIStatusError) as err:
        oai(g).embeddings.create(model=model, input=f"Contact {EMAIL} about the invoice")
    assert err.value.status_code in (400, 403) and EMAIL not in str(err.value)
    assert not [r for r in openai_up.requests if EMAIL.encode() in r.raw]
    oai(g).embeddings.create(model=model, input="plain words")  # nothing protected: embedded as before
    assert [r for r in openai_up.requests if r.path.endswith("/embeddings")]


def test_embeddings_redact_under_a_nested_route_s_redact_rule(gateway, openai_up):
    g = gateway(_nested("openai", openai_up.url, openai_up.url, {"pii": "redact"}))
    oai(g).embeddings.create(model="main", input=f"Contact {EMAIL} about the invoice")
    [sent] = [r for r in openai_up.requests if r.path.endswith("/embeddings")]
    assert sent.body["input"] == "Contact <EMAIL_ADDRESS_1> about the invoice"


@pytest.mark.parametrize("model", ["main", "deep"])
def test_count_tokens_keeps_a_nested_route_s_rule(gateway, openai_up, anthropic_up, model):
    g = gateway(_nested("anthropic", openai_up.url, anthropic_up.url, {"pii": "local_only"}))
    n = ant(g).messages.count_tokens(model=model, messages=[{"role": "user", "content": f"Write to {EMAIL}"}])
    assert n.input_tokens > 0  # the estimate
    assert not [r for r in anthropic_up.requests if EMAIL.encode() in r.raw]


# ---------------------------------------------------------------------------- a route two deep: one mapping
# A guard nested two deep (route_rule.py: `deep` -> `mid` -> `inner`, each of the last two with a rule) redacted with
# the request's mapping but saved it under its parent's conversation, which only the request's own guard holds: the
# conversation's mapping was not kept, and the next turn gave a new value the placeholder of the last turn's.

@pytest.mark.parametrize("entry", ["mid", "deep"])
def test_a_conversation_s_mapping_is_kept_by_a_route_two_deep(gateway, openai_up, anthropic_up, entry):
    anthropic_up.default = echo_placeholders
    routes = {"main": ["local"], "deep": {"policy": "fallback", "targets": ["mid"], "retries": 0},
              "mid": {"policy": "fallback", "targets": ["inner", "local"], "retries": 0}, "inner": ["frontier"]}
    cfg = privacy_config(openai_up.url, anthropic_up.url, routes, policy={"pii": "allow", "secrets": "block"},
                         route_policy={"mid": {"secrets": "block"}, "inner": {"pii": "redact"}})
    g = gateway(cfg)
    h = {"x-tierwise-conversation": "conv-31d"}
    first, second = "ops@example.org", EMAIL
    r = oai(g).chat.completions.create(model=entry, messages=[{"role": "user", "content": f"copy {first}"}],
                                       extra_headers=h)
    assert b"<EMAIL_ADDRESS_1>" in anthropic_up.requests[-1].raw and first in r.choices[0].message.content
    r = oai(g).chat.completions.create(model=entry, messages=[{"role": "user", "content": f"copy {second}"}],
                                       extra_headers=h)
    sent = anthropic_up.requests[-1].raw
    assert b"<EMAIL_ADDRESS_2>" in sent and second.encode() not in sent, sent[-300:]  # the mapping came from the store
    assert second in r.choices[0].message.content
