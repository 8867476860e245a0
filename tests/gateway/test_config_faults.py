"""A route whose every target fails on the gateway's own configuration (session 29's new user): the upstream refused
the gateway's key, the local server does not have the model. Before, the client heard a 503 `overloaded_error` with a
Retry-After, which every SDK retries; Claude Code retried it for minutes in silence (16 requests in 200 s, nothing
printed). A refused key or a missing model fails the same way until the operator fixes the config: the answer is a
502 with `x-should-retry: false` (which the openai and anthropic SDKs obey) naming each target's fault, also once the
breaker those failures opened is what answers. A target that is merely down keeps the retryable 503.

The upstream's own words for a refused key ("invalid x-api-key") are said as the gateway's key: Claude Code reads any
error naming `x-api-key` as its own key and told its user "Invalid API key · Fix external API key".
Real HTTP on loopback, the official SDKs.
"""

from __future__ import annotations

from pathlib import Path

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.doubles.script import Fail, Raw
from tests.harness import free_port, two_tier_config

MSG = [{"role": "user", "content": "hi"}]
NOT_PULLED = 'model "qwen-local" not found, try pulling it first'  # Ollama's 404


def _refusing(openai_up, anthropic_up, **extra):
    anthropic_up.default = Fail(401, "invalid x-api-key", error_type="authentication_error")
    openai_up.default = Fail(404, NOT_PULLED)
    return two_tier_config(openai_up.url, anthropic_up.url, **extra)


def test_every_target_misconfigured_is_a_502_the_sdks_do_not_retry(gateway, openai_up, anthropic_up):
    g = gateway(_refusing(openai_up, anthropic_up))
    client = g.keep(anthropic.Anthropic(base_url=g.url, api_key="k", max_retries=2))
    with pytest.raises(anthropic.APIStatusError) as e:
        client.messages.create(model="main", max_tokens=16, messages=MSG)
    # Before: 503 overloaded_error, and the SDK's two retries asked each upstream twice more.
    assert e.value.status_code == 502, e.value
    assert e.value.response.headers.get("x-should-retry") == "false"
    assert len(anthropic_up.requests) == 1 and len(openai_up.requests) == 1
    body = e.value.body
    assert body["error"]["type"] == "api_error"
    message = body["error"]["message"]
    assert "frontier:" in message and "local:" in message and "not found, try pulling it first" in message
    assert "gateway's key" in message and "x-api-key" not in message.lower(), message

    with pytest.raises(openai.APIStatusError) as o:
        g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="k", max_retries=2)).chat.completions.create(
            model="main", messages=MSG
        )
    assert o.value.status_code == 502 and o.value.response.headers.get("x-should-retry") == "false"
    assert len(anthropic_up.requests) == 2 and len(openai_up.requests) == 2


def test_a_stream_on_a_misconfigured_route_is_not_retried_either(gateway, openai_up, anthropic_up):
    g = gateway(_refusing(openai_up, anthropic_up))
    client = anthropic.Anthropic(base_url=g.url, api_key="k", max_retries=2)
    with pytest.raises(anthropic.APIStatusError) as e:
        with client.messages.stream(model="main", max_tokens=16, messages=MSG) as s:
            s.get_final_message()
    assert e.value.status_code == 502 and e.value.response.headers.get("x-should-retry") == "false"
    assert len(anthropic_up.requests) == 1 and len(openai_up.requests) == 1


def test_a_model_asked_by_name_that_its_server_lacks_is_not_retried(gateway, openai_up, anthropic_up):
    g = gateway(_refusing(openai_up, anthropic_up))
    r = httpx.post(g.url + "/v1/chat/completions", json={"model": "local", "messages": MSG})
    assert r.status_code == 502 and r.headers.get("x-should-retry") == "false", (r.status_code, r.headers)
    assert "not found, try pulling it first" in r.json()["error"]["message"]


def test_the_breaker_a_refused_key_opened_says_why_and_is_not_retried(gateway, openai_up, anthropic_up):
    cfg = _refusing(openai_up, anthropic_up, breaker={"failures": 1, "cooldown": 600})
    g = gateway(cfg)
    first = httpx.post(g.url + "/v1/messages", json={"model": "frontier", "max_tokens": 8, "messages": MSG})
    assert first.status_code == 502 and first.headers.get("x-should-retry") == "false"
    # The breaker is open now: the model is not called, and the answer still says it is the key.
    r = httpx.post(g.url + "/v1/messages", json={"model": "frontier", "max_tokens": 8, "messages": MSG})
    assert len(anthropic_up.requests) == 1
    # The same 502 as the call that opened it (was a 503 `overloaded_error` with a Retry-After: "come back").
    assert r.status_code == 502 and r.headers.get("x-should-retry") == "false", (r.status_code, r.headers)
    assert "gateway's key" in r.json()["error"]["message"], r.text
    # ...and through the route, whose targets are both open now.
    r = httpx.post(g.url + "/v1/messages", json={"model": "main", "max_tokens": 8, "messages": MSG})
    assert r.status_code == 502 and r.headers.get("x-should-retry") == "false", (r.status_code, r.text)


def test_a_target_that_is_only_down_keeps_the_retryable_503(gateway, openai_up, anthropic_up):
    anthropic_up.default = Fail(401, "invalid x-api-key", error_type="authentication_error")
    cfg = two_tier_config(f"http://127.0.0.1:{free_port()}", anthropic_up.url)  # nothing listens there
    g = gateway(cfg)
    r = httpx.post(g.url + "/v1/messages", json={"model": "main", "max_tokens": 8, "messages": MSG})
    # The local server may be started any moment: a retry can succeed.
    assert r.status_code == 503 and "x-should-retry" not in r.headers, (r.status_code, r.headers)
    assert r.json()["error"]["type"] == "overloaded_error"


def test_a_route_whose_other_target_cannot_hold_the_request_is_not_retried_either(
    gateway, openai_up, anthropic_up
):
    # The local model's window is too small for this request and the frontier refuses the gateway's key: no retry
    # changes either (Claude Code's first turn, ~18,000 tokens, against a local 8,192 window did exactly this).
    anthropic_up.default = Fail(401, "invalid x-api-key", error_type="authentication_error")
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    long = [{"role": "user", "content": "word " * 12_000}]
    r = httpx.post(g.url + "/v1/messages", json={"model": "main", "max_tokens": 8, "messages": long})
    assert r.status_code == 502 and r.headers.get("x-should-retry") == "false", (r.status_code, r.text)
    assert "cannot hold this request" in r.json()["error"]["message"] and not openai_up.requests


def test_a_provider_key_not_exported_where_the_gateway_runs_is_not_retried(
    gateway, openai_up, anthropic_up, monkeypatch, caplog
):
    # The README's first trap: ANTHROPIC_API_KEY exported in the client's shell, not in the one running `serve`.
    monkeypatch.delenv("TIERWISE_TEST_UNSET_KEY", raising=False)
    openai_up.default = Fail(404, NOT_PULLED)
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    cfg["providers"]["cloud"]["api_key_env"] = "TIERWISE_TEST_UNSET_KEY"
    g = gateway(cfg)
    client = g.keep(anthropic.Anthropic(base_url=g.url, api_key="k", max_retries=2))
    with pytest.raises(anthropic.APIStatusError) as e:
        client.messages.create(model="main", max_tokens=16, messages=MSG)
    assert e.value.status_code == 502 and e.value.response.headers.get("x-should-retry") == "false"
    assert "set the environment variable TIERWISE_TEST_UNSET_KEY" in e.value.body["error"]["message"]
    assert not anthropic_up.requests and len(openai_up.requests) == 1
    # The console says it is missing here, not "refused" (nothing was sent).
    assert "TIERWISE_TEST_UNSET_KEY is not set where the gateway runs" in caplog.text, caplog.text
    assert "refused the gateway's key" not in caplog.text


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/responses"])
def test_a_stream_that_fails_before_its_first_byte_names_its_route_and_steps(
    gateway, openai_up, anthropic_up, path
):
    # A non-streamed failure had `x-tierwise-route` and `x-tierwise-steps`; the same failure streamed had neither.
    g = gateway(_refusing(openai_up, anthropic_up))
    msgs = {"input": "hi"} if path == "/v1/responses" else {"messages": MSG}
    r = httpx.post(g.url + path, json={"model": "main", "max_tokens": 8, "stream": True, **msgs})
    assert r.status_code == 502, r.text
    assert r.headers.get("x-tierwise-route") == "main", r.headers
    assert r.headers.get("x-tierwise-steps") == "call:frontier:fail,call:local:fail", r.headers


def test_a_breaker_a_peer_replica_opened_does_not_claim_this_replicas_old_fault(
    gateway, openai_up, anthropic_up
):
    # A refused key once, then a success, then the breaker opened by a peer's shared state (an outage there): the
    # old refusal is not named, and the 503 stays retryable.
    from tests.doubles.script import Reply

    g = gateway(_refusing(openai_up, anthropic_up))
    assert (
        httpx.post(
            g.url + "/v1/messages", json={"model": "frontier", "max_tokens": 8, "messages": MSG}
        ).status_code
        == 502
    )
    anthropic_up.default = Reply(text="fine")
    assert (
        httpx.post(
            g.url + "/v1/messages", json={"model": "frontier", "max_tokens": 8, "messages": MSG}
        ).status_code
        == 200
    )
    breaker = g.gateway.deployments["frontier"].breaker
    breaker.cooldown = 600  # adopt bounds `retry_in` by it: the config's 0.3 s let a busy machine's next request probe
    breaker.adopt(True, retry_in=600)
    r = httpx.post(g.url + "/v1/messages", json={"model": "frontier", "max_tokens": 8, "messages": MSG})
    assert r.status_code == 503 and "x-should-retry" not in r.headers, (r.status_code, r.headers)
    assert "invalid API key" not in r.text, r.text


# A client's own request can draw a 402/403/404 from an OpenAI-compatible host (OpenRouter's documented answers):
# that is not the gateway's configuration, must not open the breaker for every other client, must not be said as
# "the gateway's key", and must not tell anyone not to retry a healthy route.
_FLAGGED = Raw(
    403,
    orjson.dumps(
        {
            "error": {
                "code": 403,
                "message": "Your chosen model requires moderation and your input was flagged",
                "metadata": {
                    "reasons": ["harassment"],
                    "flagged_input": "...",
                    "provider_name": "OpenAI",
                    "model_slug": "openai/gpt-4o",
                },
            }
        }
    ),
)
_NO_TOOLS = Raw(
    404,
    orjson.dumps(
        {
            "error": {
                "code": 404,
                "message": "No endpoints found that support tool use. To learn more about provider routing, visit: "
                "https://openrouter.ai/docs/provider-routing",
            }
        }
    ),
)
_FEWER = Raw(
    402,
    orjson.dumps(
        {
            "error": {
                "code": 402,
                "message": "This request requires more credits, or fewer max_tokens. You requested up to 64000 "
                "tokens, but can only afford 1234. To increase, visit https://openrouter.ai/settings/credits",
            }
        }
    ),
)


@pytest.mark.parametrize(
    "answer", [_FLAGGED, _NO_TOOLS, _FEWER], ids=["flagged", "no_endpoints", "fewer_tokens"]
)
def test_a_client_caused_refusal_is_not_the_gateways_config_and_opens_no_breaker(
    gateway, openai_up, anthropic_up, answer
):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, breaker={"failures": 1, "cooldown": 600})
    g = gateway(cfg)
    openai_up.script(answer)
    bad = httpx.post(
        g.url + "/v1/chat/completions", json={"model": "local", "messages": MSG, "max_tokens": 64000}
    )
    assert bad.status_code != 502 and "gateway's key" not in bad.text, (bad.status_code, bad.text)
    assert "x-should-retry" not in bad.headers or bad.status_code < 500, bad.headers
    # Another client, same model, right after: answered (the breaker did not open on the first client's request).
    ok = httpx.post(g.url + "/v1/chat/completions", json={"model": "local", "messages": MSG})
    assert ok.status_code == 200, (ok.status_code, ok.text)


def test_a_refused_keys_masked_fragment_does_not_reach_the_client(gateway, openai_up, anthropic_up):
    # OpenAI's 401 repeats the start and the end of the key it refused: the gateway's key, not for its clients.
    openai_up.default = Fail(
        401,
        "Incorrect API key provided: sk-proj-Ab3d****************************************************Wx9z. You can "
        "find your API key at https://platform.openai.com/account/api-keys.",
    )
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    r = httpx.post(g.url + "/v1/chat/completions", json={"model": "local", "messages": MSG})
    assert r.status_code == 502 and "Incorrect API key provided" in r.text, r.text
    assert "Ab3d" not in r.text and "Wx9z" not in r.text, r.text


def test_an_open_breaker_does_not_repeat_another_clients_failure_text(gateway, openai_up, anthropic_up):
    # The breaker names the failure that opened it only when it is the config's (a refused key, a missing model):
    # an outage's text may echo the request that drew it (a template error quoting the prompt), and the next
    # client, anyone, would read it.
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, breaker={"failures": 1, "cooldown": 600}))
    openai_up.script(Fail(500, "template error near 'my salary is 91,000 and my PIN is 4471'"))
    first = httpx.post(g.url + "/v1/chat/completions", json={"model": "local", "messages": MSG})
    assert first.status_code == 502, first.text
    other = httpx.post(g.url + "/v1/chat/completions", json={"model": "local", "messages": MSG})
    assert other.status_code == 503 and "circuit open" in other.text, other.text
    assert "salary" not in other.text and "4471" not in other.text, other.text


@pytest.mark.parametrize("policy", ["cascade", "specialist", "learned"])
def test_other_policies_whose_breakers_a_config_fault_opened_answer_the_same_502(
    gateway, openai_up, anthropic_up, tmp_path, policy
):
    # A fallback route said 502 `api_error`; a cascade, specialist or learned route over the same two faulty targets
    # said 503 `overloaded_error` ("circuit open") once the breakers were open: one fault, two answers.
    from tierwise.evaluation.loaders import load_jsonl
    from tierwise.routers import make_router, save_router

    fixture = str(Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl")
    routes = {
        "cascade": {"policy": "cascade", "tiers": ["local", "frontier"]},
        "specialist": {
            "policy": "specialist",
            "default": "local",
            "specialists": [{"target": "frontier", "detect": {"keywords": ["prove"]}}],
        },
        "learned": {
            "policy": "learned",
            "router": str(save_router(make_router("linear").fit(load_jsonl(fixture)), tmp_path / "router")),
            "strong": "frontier",
            "weak": "local",
            "threshold": 1e9,
        },
    }
    cfg = _refusing(
        openai_up, anthropic_up, routes={"main": routes[policy]}, breaker={"failures": 1, "cooldown": 600}
    )
    g = gateway(cfg)
    client = g.keep(anthropic.Anthropic(base_url=g.url, api_key="k", max_retries=2))
    msg = [{"role": "user", "content": "prove it"}]
    for _ in range(3):  # the first calls open the breakers; then only they answer
        with pytest.raises(anthropic.APIStatusError) as e:
            client.messages.create(model="main", max_tokens=16, messages=msg)
        assert e.value.status_code == 502, e.value
        assert e.value.body["error"]["type"] == "api_error"
        assert e.value.response.headers.get("x-should-retry") == "false"
        assert "retry-after" not in e.value.response.headers
    assert len(anthropic_up.requests) <= 1 and len(openai_up.requests) <= 1
