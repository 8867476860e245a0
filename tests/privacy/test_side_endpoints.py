"""The two endpoints that send the client's text upstream without a policy, `POST
/v1/messages/count_tokens` (to the route's first model, when it is Anthropic's) and `POST
/v1/embeddings`, pass the privacy boundary too, over real HTTP with the official SDKs.

Before, both posted the client's body to a remote model as it was: a card number sent to count
tokens, or an email sent to be embedded, reached the frontier model on a route whose policy
redacts, refuses or blocks it."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config
from tests.privacy.support import FIRST, SECRET, SEEDS, leaked, privacy_config


def _privacy(cfg: dict[str, Any], policy: dict[str, str]) -> dict[str, Any]:
    cfg["privacy"] = {"ner": {"enabled": False}, "classes": {"pii": {}, "secrets": {}}, "policy": policy}
    return cfg


def test_count_tokens_sends_no_protected_value_to_a_remote_model(gateway, openai_up, anthropic_up):
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, {"main": ["frontier"], "f": ["frontier"]}))
    n = ant(g).messages.count_tokens(model="f", messages=[{"role": "user", "content": FIRST}])
    assert n.input_tokens > 0  # tierwise's estimate: the upstream's count would need the values
    assert not [r.path for r in anthropic_up.requests if leaked(r.raw)], "a protected value reached the remote model"
    # Text with nothing protected in it is still counted by the upstream.
    ant(g).messages.count_tokens(model="f", messages=[{"role": "user", "content": "hello " * 50}])
    assert [r.path for r in anthropic_up.requests] == ["/v1/messages/count_tokens"]


def test_embeddings_of_protected_values_follow_the_route_policy(gateway, openai_up, anthropic_up):
    # The remote model speaks OpenAI's API here (embeddings are OpenAI's); "local" stays local.
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": ["local"], "f": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    g = gateway(_privacy(cfg, {"pii": "redact", "secrets": "block"}))
    email = SEEDS["EMAIL_ADDRESS"]
    e = oai(g).embeddings.create(model="f", input=[f"Contact {email} about the invoice", "plain words"])
    assert len(e.data) == 2
    remote = [r for r in openai_up.requests if r.path.endswith("/embeddings")]
    assert remote and remote[-1].body["model"] == "big-model"
    assert not leaked(remote[-1].raw), remote[-1].raw
    assert remote[-1].body["input"] == ["Contact <EMAIL_ADDRESS_1> about the invoice", "plain words"]
    # A single string stays a single string.
    oai(g).embeddings.create(model="f", input=f"mail {email}")
    assert openai_up.requests[-1].body["input"] == "mail <EMAIL_ADDRESS_1>"
    # `block`: refused in OpenAI's schema, and nothing is sent.
    before = len(openai_up.requests)
    with pytest.raises(openai.BadRequestError) as err:
        oai(g).embeddings.create(model="f", input=[f"key {SECRET}"])
    assert "privacy" in str(err.value) and SECRET not in str(err.value)
    assert len(openai_up.requests) == before
    # A local embedding model sees the text as it is (nothing leaves the machine).
    oai(g).embeddings.create(model="local", input=f"mail {email}")
    assert openai_up.requests[-1].body["input"] == f"mail {email}"


def test_embeddings_refused_where_the_class_is_local_only(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": ["local"], "f": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    g = gateway(_privacy(cfg, {"pii": "local_only", "secrets": "block"}))
    with pytest.raises(openai.BadRequestError) as err:  # a 403 before session 36 (newuser36)
        oai(g).embeddings.create(model="f", input=f"card {SEEDS['CREDIT_CARD']}")
    assert "privacy" in str(err.value)
    assert not [r for r in openai_up.requests if r.path.endswith("/embeddings")]


def test_count_tokens_of_a_blocked_value_sends_nothing(gateway, openai_up, anthropic_up):
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, {"main": ["frontier"], "f": ["frontier"]}))
    try:
        ant(g).messages.count_tokens(model="f", messages=[{"role": "user", "content": f"key {SECRET}"}])
    except anthropic.BadRequestError:
        pass  # a refusal is fine too: what matters is that nothing left
    assert not [r for r in anthropic_up.requests if SECRET.encode() in r.raw]
