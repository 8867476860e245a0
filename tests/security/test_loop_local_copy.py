"""The reflective route's in-memory copy of local answers and their requests' text (review31b, session 31): kept for
a `poor` rating's judging, which happens only under `sampling: rules`. Under `sampling: value` (the default) a rating
is evidence and no judge call: nothing read the copy, and it held the latest 256 local answers with their requests'
text (up to 64,000 characters each, a `local_only` request's too) in the gateway's memory for nothing."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import wait_for
from tests.security.test_loop_privacy import EMAIL, PRIVATE, _gateway


def test_value_sampling_keeps_no_copy_of_local_requests(gateway, openai_up, anthropic_up):  # noqa: F811
    g, route, client = _gateway(gateway, openai_up, anthropic_up, sampling="value")
    r = client.chat.completions.with_raw_response.create(model="main", messages=[
        {"role": "user", "content": f"{PRIVATE} Reply to {EMAIL}."}])  # local_only: served by the local tier
    assert wait_for(lambda: not route._background, timeout=30)
    assert r.parse().choices[0].message.content == "local summary"
    assert not route._recent  # before: the request's text, the address with it
    asked = len(anthropic_up.requests)
    rated = httpx.post(g.url + "/v1/tierwise/feedback", json={"request_id": r.headers["x-tierwise-request-id"],
                                                              "rating": "poor"}).json()
    assert rated["tier"] == "local" and rated["judging"] is False  # evidence, not a judging
    assert wait_for(lambda: not route._background, timeout=30)
    assert len(anthropic_up.requests) == asked


def test_rules_sampling_still_keeps_it_for_a_ratings_judging(gateway, openai_up, anthropic_up):  # noqa: F811
    g, route, client = _gateway(gateway, openai_up, anthropic_up)  # sampling: rules
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{PRIVATE} Reply to {EMAIL}."}])
    assert wait_for(lambda: not route._background, timeout=30)
    assert len(route._recent) == 1
