"""A `privacy.routes` rule holds for the route's models also when a client names one of them directly, past the
route (`server.direct_models`, on by default), over real HTTP with the official SDKs.

Before: `privacy.routes.main: {pii: local_only}` on route main (frontier, then local). A client naming `frontier`
directly got `privacy.policy` (`pii: redact`): the e-mail address reached the remote model (redacted) and the
client had its answer, where naming `main` kept the request local. `doctor` and `serve` only warned."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.support import SEEDS, privacy_config

EMAIL = SEEDS["EMAIL_ADDRESS"]
ROUTES = {"main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
          "chat": ["frontier"]}  # a route without a rule of its own: `policy` holds there


def _gateway(gateway, openai_up, anthropic_up):  # type: ignore[no-untyped-def]
    return gateway(privacy_config(openai_up.url, anthropic_up.url, ROUTES,
                                  policy={"pii": "redact", "secrets": "block"},
                                  route_policy={"main": {"pii": "local_only"}}))


def _remote_calls(anthropic_up) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [r.raw for r in anthropic_up.requests if r.path.endswith("/messages")]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_naming_the_route_s_remote_model_directly_keeps_the_route_s_local_only(api, gateway, openai_up,
                                                                                anthropic_up):
    g = _gateway(gateway, openai_up, anthropic_up)
    text = f"Write to {EMAIL} about the invoice"
    if api == "openai":
        with pytest.raises(openai.BadRequestError) as err:
            oai(g).chat.completions.create(model="frontier", messages=[{"role": "user", "content": text}])
    else:
        with pytest.raises(anthropic.BadRequestError) as err:
            ant(g).messages.create(model="frontier", max_tokens=50, messages=[{"role": "user", "content": text}])
    assert "local_only" in str(err.value) and EMAIL not in str(err.value), str(err.value)
    assert _remote_calls(anthropic_up) == [], "the route's local_only data reached its remote model"


def test_the_route_itself_and_other_routes_are_unchanged(gateway, openai_up, anthropic_up):
    g = _gateway(gateway, openai_up, anthropic_up)
    text = f"Write to {EMAIL} about the invoice"
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": text}])
    assert r.model and _remote_calls(anthropic_up) == []  # the local tier served
    assert any(EMAIL.encode() in q.raw for q in openai_up.requests)  # as written: nothing left the machine
    # `chat` has no rule of its own: `policy` (redact) holds there, as the operator wrote it.
    oai(g).chat.completions.create(model="chat", messages=[{"role": "user", "content": text}])
    [sent] = _remote_calls(anthropic_up)
    assert EMAIL.encode() not in sent and b"<EMAIL_ADDRESS_1>" in sent
    # Text without protected values still goes to the model named directly.
    oai(g).chat.completions.create(model="frontier", messages=[{"role": "user", "content": "hello there"}])
    assert len(_remote_calls(anthropic_up)) == 2


def test_a_route_inside_the_route_named_directly_keeps_it_too(gateway, openai_up, anthropic_up):
    # main = inner (frontier), then local. Naming `inner` skipped main's rule as naming `frontier` did.
    routes = {"main": {"policy": "fallback", "targets": ["inner", "local"], "retries": 0}, "inner": ["frontier"]}
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, routes, policy={"pii": "redact", "secrets": "block"},
                               route_policy={"main": {"pii": "local_only"}}))
    text = f"Write to {EMAIL} about the invoice"
    for name in ("inner", "frontier"):
        with pytest.raises(openai.BadRequestError):
            oai(g).chat.completions.create(model=name, messages=[{"role": "user", "content": text}])
    assert _remote_calls(anthropic_up) == []
    oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": text}])
    assert _remote_calls(anthropic_up) == []
