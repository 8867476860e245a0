"""count_tokens and embeddings calls count as their client's model-bound requests in flight
(`server.limits.max_requests_per_client`, server/deployment_endpoints.py).

Before, neither was counted: one address on an open gateway held its cap in chat calls and, beside them, half the
provider's pool in embeddings calls and an eighth in count_tokens calls. Now, at its cap, the client's embeddings
call gets 429 in OpenAI's schema and its count_tokens call tierwise's estimate (no upstream call); each gives its
count back (the cap's other ways out: tests/gateway/test_request_cap.py). Chat calls are held upstream (`Gate`)
until the test releases them; the clients are the official SDKs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import anthropic
import openai
import pytest

from tests.doubles.script import Gate, Reply
from tests.gateway.client_caps import MSG, ant_from, oai_from
from tests.harness import wait_for


def _gw(gateway, kind: str, up):
    return gateway({"server": {"default_route": "main", "limits": {"max_requests_per_client": 2}},
                    "ledger": {"enabled": False},
                    "providers": {"up": {"kind": kind, "base_url": up.url + "/v1" if kind == "openai" else up.url,
                                         "locality": "remote"}},
                    "models": {"m": {"provider": "up", "model": "big-model"}},
                    "routes": {"main": {"policy": "fallback", "targets": ["m"], "retries": 0}}})


def _held(g) -> dict[str, int]:
    return dict(g.on_loop(lambda: dict(g.app.calls.open)))


def test_embeddings_count_against_the_clients_cap(gateway, openai_up):
    g = _gw(gateway, "openai", openai_up)
    client = oai_from(g)
    for _ in range(4):  # each gives its count back
        assert client.embeddings.create(model="main", input="x").data
    assert _held(g) == {}
    release = threading.Event()
    openai_up.default = Gate(release, Reply(text="held"))
    pool = ThreadPoolExecutor(2)
    try:
        held = [pool.submit(lambda: oai_from(g).chat.completions.create(model="main", messages=MSG))
                for _ in range(2)]
        assert wait_for(lambda: _held(g) == {"127.0.0.1": 2} and len(openai_up.requests) == 6)
        with pytest.raises(openai.RateLimitError) as e:
            client.embeddings.create(model="main", input="x")
        assert "max_requests_per_client" in e.value.message and e.value.response.headers["retry-after"] == "1"
        assert len(openai_up.requests) == 6  # refused before any upstream call
        assert oai_from(g, "127.0.0.2").embeddings.create(model="main", input="x").data  # another client: served
        release.set()
        assert all(f.result(timeout=30).choices[0].message.content == "held" for f in held)
        assert wait_for(lambda: _held(g) == {})
        assert client.embeddings.create(model="main", input="x").data
    finally:
        release.set()
        pool.shutdown()
    assert _held(g) == {}


def test_count_tokens_at_the_clients_cap_is_estimated_without_an_upstream_call(gateway, anthropic_up):
    g = _gw(gateway, "anthropic", anthropic_up)
    client = ant_from(g)

    def counts() -> int:
        return sum(r.path.endswith("/count_tokens") for r in anthropic_up.requests)

    assert client.messages.count_tokens(model="main", messages=MSG).input_tokens > 0
    assert counts() == 1 and _held(g) == {}
    release = threading.Event()
    anthropic_up.default = Gate(release, Reply(text="held"))
    pool = ThreadPoolExecutor(2)
    try:
        held = [pool.submit(lambda: ant_from(g).messages.create(model="main", max_tokens=20, messages=MSG))
                for _ in range(2)]
        assert wait_for(lambda: _held(g) == {"127.0.0.1": 2} and len(anthropic_up.requests) == 3)
        assert client.messages.count_tokens(model="main", messages=MSG).input_tokens > 0  # the estimate
        assert counts() == 1  # no upstream call past the cap
        assert ant_from(g, "127.0.0.2").messages.count_tokens(model="main", messages=MSG).input_tokens > 0
        assert counts() == 2  # another client's count is the upstream's
        release.set()
        assert all(isinstance(f.result(timeout=30), anthropic.types.Message) for f in held)
        assert wait_for(lambda: _held(g) == {})
        assert client.messages.count_tokens(model="main", messages=MSG).input_tokens > 0
        assert counts() == 3
    finally:
        release.set()
        pool.shutdown()
    assert _held(g) == {}
