"""Safe demotion to a configured safe policy (issue 22, point 3): a `learned` route's `shift.fallback` names a
`reflective` route, so while the learned route is demoted its requests follow the reflective route's
per-task-type boundary — local for the task type the judge has accepted, the frontier for the others — and the
trace and ledger say the route was demoted, why, and to which policy. Real HTTP, the official openai SDK."""

from __future__ import annotations

import json

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config, wait_for
from tests.routers.test_shift import dataset, other, support
from tierwise.routers import make_router, save_router
from tierwise.routers.shift import attach_profile

SUMMARY = "Summarize the following article in three sentences: the council met on Tuesday to discuss the {} budget."
WINDOW, DEMOTE_ABOVE = 20, 0.25


def frontier_or_judge(rec):
    """The frontier double answers, and as the judge accepts the local tier's summaries only."""
    text = json.dumps(rec.body)
    if "You are grading" in text:
        return Reply(text=f"Graded.\nVERDICT: {'good' if 'Summarize' in text else 'poor'}")
    return Reply(text="frontier answer")


def test_a_demoted_learned_route_follows_a_reflective_routes_boundary(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                       tmp_path):
    train = support(400, 0)
    router = str(save_router(attach_profile(make_router("linear").fit(dataset(train)), train), tmp_path / "support"))
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "learned", "router": router, "strong": "frontier", "weak": "local", "target_share": 0.3,
                 "shift": {"window": WINDOW, "min_requests": 10, "demote_above": DEMOTE_ABOVE,
                           "promote_below": 0.1, "fallback": "careful"}},
        "careful": {"policy": "reflective", "local": "local", "frontier": "frontier", "quality_target": 0.6,
                    "boundary": {"credible": 0.8}}})
    cfg["ledger"]["store_text"] = True
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = frontier_or_judge
    client = oai(g)
    careful = g.gateway.resolve("careful")

    def ask(model, prompt):
        r = client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": prompt}])
        assert wait_for(lambda: not careful._background, timeout=30)  # the reflective route's shadow runs and judging are done
        rid = r.headers["x-tierwise-request-id"]
        assert wait_for(lambda: g.flush() or g.ledger.get(rid) is not None, timeout=30)
        rec = g.ledger.get(rid)
        return r.parse().choices[0].message.content, rec, [s for s in rec.steps if s["kind"] == "decision"]

    # The reflective route earns summarisation for the local tier (the judge accepts its answers).
    for i in range(12):
        ask("careful", SUMMARY.format(f"#{i}"))
    assert careful.loop.boundary.tier("summarisation") == "local"

    # Support traffic like the router's training data: routed by score, not demoted.
    first = [ask("main", p) for p in support(WINDOW, 1)]
    assert not any(steps[0]["detail"]["shift"]["demoted"] for _, _, steps in first)

    # Traffic off the router's distribution, summaries and other tasks interleaved: demoted within a bound, then
    # every request goes through `careful`, which answers summaries locally and the rest from the frontier.
    shifted = [SUMMARY.format(f"year {i}") if i % 2 else other(40)[i] for i in range(2 * WINDOW)]
    second = [(p, *ask("main", p)) for p in shifted]
    demoted = [steps[0]["detail"]["shift"]["demoted"] for _, _, _, steps in second]
    at = demoted.index(True)
    assert at + 1 <= int(DEMOTE_ABOVE * WINDOW) + 1 + 10  # at most min_requests, then a quarter of the window
    assert all(demoted[at:])
    kinds = set()
    for prompt, answer, rec, steps in second[at:]:
        learned, reflective = steps[0], steps[1]
        assert learned["name"] == "main" and learned["detail"]["tier"] == "fallback"
        assert "off the router's training distribution" in learned["detail"]["demotion_reason"]
        assert rec.reason.startswith("demoted: traffic is off the router's training distribution")
        assert "-> careful" in learned["reason"]
        assert reflective["name"] == "careful"
        assert rec.reason.endswith("; " + reflective["reason"])  # why demoted, then what the safe policy chose
        summary = prompt.startswith("Summarize")
        assert reflective["detail"]["task_type"] == "summarisation" if summary else (
            reflective["detail"]["task_type"] != "summarisation")
        assert answer == ("local answer" if summary else "frontier answer"), (prompt, reflective)
        kinds.add(summary)
    assert kinds == {True, False}
