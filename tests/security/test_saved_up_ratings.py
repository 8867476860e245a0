"""Ratings saved up from before a move (review31b, session 31): under `sampling: value` a user's first rating of a
local answer enters its task type's posterior as a verdict, whenever it comes. A key that kept the ids of local
answers served before a move (a drift that sent the type back sets that evidence aside) could rate them afterwards
and bring it back in. A rating of an answer served before the type's latest move is recorded, and is not evidence."""

from __future__ import annotations

import time

import httpx

from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import wait_for
from tests.security.test_loop_privacy import EMAIL, PRIVATE, _gateway

TYPE = "summarisation"


def _local_answer(client, route) -> str:
    """An answer the local tier serves: its request is local_only (the frontier may not have it)."""
    r = client.chat.completions.with_raw_response.create(model="main", messages=[
        {"role": "user", "content": f"{PRIVATE} Reply to {EMAIL}."}])
    assert wait_for(lambda: not route._background, timeout=30)
    return r.headers["x-tierwise-request-id"]


def _rate(g, rid: str) -> dict:
    return httpx.post(g.url + "/v1/tierwise/feedback", json={"request_id": rid, "rating": "good"}).json()


def test_a_rating_of_an_answer_served_before_the_types_latest_move_is_not_evidence(
        gateway, openai_up, anthropic_up):  # noqa: F811
    g, route, client = _gateway(gateway, openai_up, anthropic_up, sampling="value")
    saved = _local_answer(client, route)
    g.flush()
    time.sleep(0.01)  # the move comes after the answer's ledger time
    for i in range(200):  # evidence moves the type (its verdicts, not this answer's rating)
        if route.loop.boundary.tier(TYPE) == "local":
            break
        route.loop.verdict(TYPE, 1.0, request_id=f"v{i}", at=time.time())
    assert route.loop.boundary.tier(TYPE) == "local"
    judged = route.loop.boundary.states[TYPE].total_judged
    rated = _rate(g, saved)
    assert rated["tier"] == "local" and rated["evidence"] is False  # True before
    assert route.loop.boundary.states[TYPE].total_judged == judged
    fresh = _local_answer(client, route)  # served after the move: its rating counts
    assert _rate(g, fresh)["evidence"] is True
    assert "served_at" not in _rate(g, fresh)  # internal: not part of the answer
