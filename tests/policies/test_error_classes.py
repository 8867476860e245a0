"""Upstream errors are classified by what they mean, from the bodies real servers send."""

from __future__ import annotations

import orjson
import pytest

from tests.doubles.overflow import SERVERS, overflow_body
from tierwise.config import ProviderConfig
from tierwise.errors import ContextOverflow, UpstreamError
from tierwise.providers.error_classes import classify, counts_against_deployment, moves_on
from tierwise.providers.http import Provider


def provider() -> Provider:
    return Provider("up", ProviderConfig(kind="openai", base_url="http://127.0.0.1:9/v1"), lambda: None)


@pytest.mark.parametrize("server", SERVERS)
def test_every_servers_overflow_is_a_context_overflow(server):
    err = provider().status_error(400, orjson.dumps(overflow_body(server, 27053, 4096)))
    assert isinstance(err, ContextOverflow) and err.status == 400
    assert moves_on(err) and not counts_against_deployment(err)
    if server != "ollama":  # Ollama names no numbers
        assert err.limit == 4096 and err.tokens == 27053


@pytest.mark.parametrize("status,body,cls", [
    (400, {"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error"}}, "malformed"),
    (422, {"error": {"message": "max_tokens must be at least 1"}}, "malformed"),
    (413, {"type": "error", "error": {"type": "request_too_large", "message": "Request exceeds the maximum size"}},
     "context_overflow"),
    (429, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}, "rate_limit"),
    (401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}, "auth"),
    (403, {"type": "error", "error": {"type": "permission_error", "message": "no access"}}, "auth"),
    (404, {"error": {"message": "model not found"}}, "not_found"),
    (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "overloaded"),
    (503, {"error": {"message": "Loading model", "type": "unavailable_error"}}, "overloaded"),
    (504, {"error": {"message": "upstream timed out"}}, "timeout"),
    (500, {"error": {"message": "CUDA out of memory", "type": "server_error"}}, "unavailable"),
    (400, {"error": {"message": "rejected by our safety system", "code": "content_policy_violation"}},
     "content_policy"),
    (400, {"error": {"message": "The response was filtered", "code": "content_filter"}}, "content_policy"),
    # vLLM's check of prompt + max_tokens against max_model_len is an overflow, not a malformed request.
    (400, {"error": {"message": "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum "
                                "context length is 4096 tokens and your request has 2778 input tokens "
                                "(8000 > 4096 - 2778).", "type": "BadRequestError", "code": 400}},
     "context_overflow"),
    (400, {"type": "error", "error": {"type": "invalid_request_error", "message":
                                      "input length and `max_tokens` exceed context limit: 199759 + 8192 > 200000, "
                                      "decrease input length or `max_tokens` and try again"}}, "context_overflow"),
])
def test_classes(status, body, cls):
    err = body.get("error")
    assert classify(status, err if isinstance(err, dict) else None, str(err.get("message"))).error_class == cls


def test_what_moves_on():
    p = provider()
    assert not moves_on(p.status_error(400, b'{"error":{"message":"bad field"}}'))
    assert not moves_on(p.status_error(400, b'{"error":{"message":"x","code":"content_policy_violation"}}'))
    for status in (401, 404, 429, 500, 502, 503, 504, 529):
        e = p.status_error(status, b'{"error":{"message":"x"}}')
        assert moves_on(e), status
        assert e.status != 529  # a status OpenAI clients do not know never leaves the gateway
    assert moves_on(UpstreamError("cannot connect"))


def test_a_5xx_that_mentions_context_is_still_a_server_failure():
    err = provider().status_error(500, b'{"error":{"message":"context length exceeded while loading the KV cache"}}')
    assert not isinstance(err, ContextOverflow) and counts_against_deployment(err)
