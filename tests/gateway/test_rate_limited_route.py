"""A route whose every target is rate-limited answers a rate limit, not an outage.

Each upstream said 429 with Retry-After; the client got 503 `overloaded_error` / `server_error` ("every target
failed") and no word of a rate limit, so an SDK raised InternalServerError (openai) or OverloadedError (anthropic)
instead of RateLimitError, and a client pacing itself on 429s could not. Now it gets 429 in its API's schema with
the soonest Retry-After of the targets. One target down for another reason keeps the 503: that is an outage."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.doubles import Fail
from tests.gateway.conftest import ant, oai


def two_targets(gateway, openai_up, anthropic_up):
    return gateway({
        "ledger": {"path": "ledger.db"},
        "providers": {"o": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"},
                      "a": {"kind": "anthropic", "base_url": anthropic_up.url}},
        "models": {"om": {"provider": "o", "model": "local-model"}, "am": {"provider": "a", "model": "claude"}},
        "routes": {"main": {"policy": "fallback", "targets": ["om", "am"], "retries": 0}},
    })


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_every_target_rate_limited_is_a_429_with_the_soonest_retry_after(gateway, openai_up, anthropic_up, api):
    g = two_targets(gateway, openai_up, anthropic_up)
    openai_up.default = Fail(429, retry_after=40)
    anthropic_up.default = Fail(429, retry_after=35)
    msgs = [{"role": "user", "content": "hi"}]
    if api == "openai":
        with pytest.raises(openai.RateLimitError) as e:
            oai(g).chat.completions.create(model="main", messages=msgs)
        assert e.value.body["code"] == "rate_limit_exceeded"
    else:
        with pytest.raises(anthropic.RateLimitError) as e:
            ant(g).messages.create(model="main", max_tokens=10, messages=msgs)
        assert e.value.body["error"]["type"] == "rate_limit_error"
    assert e.value.status_code == 429
    assert e.value.response.headers["retry-after"] == "35"
    assert "om:" in e.value.message and "am:" in e.value.message  # each target's reason
    assert len(openai_up.requests) == 1 and len(anthropic_up.requests) == 1


def test_a_rate_limit_and_an_outage_stay_an_outage(gateway, openai_up, anthropic_up):
    g = two_targets(gateway, openai_up, anthropic_up)
    openai_up.default = Fail(500)
    anthropic_up.default = Fail(429, retry_after=35)
    with pytest.raises(openai.InternalServerError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 503


@pytest.mark.parametrize("ahead", [600, -600, 10 * 86_400])
def test_a_retry_after_given_as_an_http_date_is_read(gateway, openai_up, anthropic_up, ahead):
    """RFC 9110 lets Retry-After be an HTTP date; it was read as none (so the 429 pause was 1 s and the client
    was told nothing). Now it is seconds from now, bounded as the number form is: a past date is 0, a far one a day."""
    import email.utils
    import time
    g = two_targets(gateway, openai_up, anthropic_up)
    when = email.utils.formatdate(time.time() + ahead, usegmt=True)
    openai_up.default = Fail(429, retry_after=when)
    anthropic_up.default = Fail(429, retry_after=when)
    with pytest.raises(openai.RateLimitError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    ra = int(e.value.response.headers["retry-after"])
    if ahead < 0:
        assert ra == 0
    elif ahead > 86_400:
        assert ra == 86_400
    else:
        assert ahead - 60 <= ra <= ahead  # the date has 1 s precision; the slack is the test's own run time
