"""The learning loop's judge and the privacy boundary (loopsec, session 31): a request the boundary keeps local (data
of a `local_only` class anywhere in it) is shown to a remote judge in no part. The judge reads the last user text
only, and the boundary scans only what it is sent: a value in the system prompt left that text free to go."""

from __future__ import annotations

import json

import httpx

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import wait_for
from tests.learning.test_reflective_route import SUMMARY
from tests.privacy.support import SEEDS, privacy_config

EMAIL = SEEDS["EMAIL_ADDRESS"]
PRIVATE = "Summarise the complaint of customer Q-PRIVATE-7781 in two sentences, please, for the team."


def _gateway(gateway, openai_up, anthropic_up, **route):  # noqa: F811
    cfg = privacy_config(openai_up.url, anthropic_up.url, {"main": {
        "policy": "reflective", "local": "local", "frontier": "frontier", "quality_target": 0.6,
        "sampling": "rules", "schedule": {"first_uses": 1000}, **route}},  # every use judged
        policy={"pii": "local_only", "secrets": "block"})
    cfg["ledger"]["store_text"] = True
    g = gateway(cfg)
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = lambda rec: Reply(
        text="Fine.\nVERDICT: good" if "You are grading" in json.dumps(rec.body) else "frontier answer")
    return g, g.gateway.resolve("main"), oai(g)


def _judge_saw(up, text: str) -> bool:
    return any(text in json.dumps(r.body) for r in up.requests if "You are grading" in json.dumps(r.body))


def test_a_local_only_value_in_the_system_prompt_keeps_the_request_from_the_judge(gateway, openai_up,  # noqa: F811
                                                                                    anthropic_up):
    """Before: the type had moved local, the request (an e-mail address in its system prompt: `local_only`) was served
    locally and judged; the judge's call carried its last user text, in which the boundary found nothing: it left."""
    g, route, client = _gateway(gateway, openai_up, anthropic_up)
    for i in range(30):
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} ({i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
    assert route.loop.boundary.tier("summarisation") == "local"
    asked = len(anthropic_up.requests)
    client.chat.completions.create(model="main", messages=[
        {"role": "system", "content": f"The customer's address is {EMAIL}."}, {"role": "user", "content": PRIVATE}])
    assert wait_for(lambda: not route._background, timeout=30)
    assert not _judge_saw(anthropic_up, "Q-PRIVATE-7781")
    assert len(anthropic_up.requests) == asked  # no remote call at all
    # a request without protected data is still judged
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (plain)"}])
    assert wait_for(lambda: not route._background, timeout=30)
    assert _judge_saw(anthropic_up, "(plain)")


def test_a_poor_rating_of_an_answer_the_boundary_kept_local_does_not_show_it_to_the_judge(gateway, openai_up,  # noqa: F811
                                                                                        anthropic_up):
    """Before: the answer was served locally because its request was `local_only` (not judged), but a `poor` rating
    had the judge look at it from the ledger's text, cleaned of the address and not of the rest: the request's words
    reached the remote judge."""
    g, route, client = _gateway(gateway, openai_up, anthropic_up)
    r = client.chat.completions.with_raw_response.create(model="main", messages=[
        {"role": "user", "content": f"{PRIVATE} Reply to {EMAIL}."}])
    assert wait_for(lambda: not route._background, timeout=30)
    asked = len(anthropic_up.requests)
    rated = httpx.post(g.url + "/v1/tierwise/feedback", json={"request_id": r.headers["x-tierwise-request-id"],
                                                              "rating": "poor"})
    assert rated.status_code == 200 and rated.json()["tier"] == "local"
    assert wait_for(lambda: not route._background, timeout=30)
    assert not _judge_saw(anthropic_up, "Q-PRIVATE-7781")
    assert len(anthropic_up.requests) == asked
