"""The `dynamic` policy through the real server: a local model that turns slow sends the route to
the frontier within a bounded number of requests, and it comes back once the local model recovers.

Slow is 600 ms against a 300 ms threshold and fast is a few ms, so the counts below do not depend
on how loaded the machine is; the assertions are on which upstream answered, never on times.
"""

from __future__ import annotations

from typing import Any

from tests.doubles import Delay, Reply
from tests.gateway.conftest import oai
from tests.harness import two_tier_config

SLOW = Delay(0.6, Reply(text="slow local"))
FAST = Reply(text="local answer")


def dynamic_route(**kw: Any) -> dict[str, Any]:
    route = {"policy": "dynamic", "local": "local", "frontier": "frontier",
             "shift_when": {"latency_ms_above": 300}, "min_samples": 2, "min_dwell_s": 0,
             "probe_every": 3, "probe_interval_s": 0}
    route.update(kw)
    return {"auto": route, "main": "frontier"}


def ask(g: Any) -> str:
    r = oai(g).chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=20)
    return r.choices[0].message.content or ""


def first_frontier(g: Any, limit: int) -> int | None:
    """Requests sent until the frontier answered one (its number), or None within `limit`."""
    for i in range(1, limit + 1):
        if ask(g) == "frontier answer":
            return i
    return None


def test_slow_local_shifts_to_frontier_and_back(gateway, openai_up, anthropic_up):
    openai_up.default, anthropic_up.default = FAST, Reply(text="frontier answer")
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes=dynamic_route()))
    assert [ask(g) for _ in range(4)] == ["local answer"] * 4  # healthy: the local tier answers

    openai_up.default = SLOW
    # EWMA (alpha 0.3) from a few ms: 2 slow calls put it above 300 ms; the third request shifts.
    n = first_frontier(g, 6)
    assert n is not None and n <= 3, n
    # On the frontier: only the probes (1 in 3) reach the slow local model.
    before = len(openai_up.requests)
    answers = [ask(g) for _ in range(6)]
    assert answers.count("frontier answer") == 4 and len(openai_up.requests) - before == 2, answers

    openai_up.default = FAST
    # Recovery needs the EWMA (about 460 ms now) below 240 ms (0.8 x 300): two fast probes if a fast
    # call takes under ~25 ms, five (15 requests) as long as one takes under ~190 ms on a loaded machine.
    answers = []
    for _ in range(18):
        answers.append(ask(g))
        if answers[-3:] == ["local answer"] * 3:
            break
    assert answers[-3:] == ["local answer"] * 3 and len(answers) <= 18, answers
    route = g.gateway.resolve("auto")
    assert route.state == "local" and route.transitions == 2

    g.flush()
    reasons = [r.reason for r in g.ledger.query(route="auto")]
    shift = next(r for r in reasons if r.startswith("shift to frontier"))
    assert "local latency_ms" in shift and "> 300" in shift, shift  # which statistic, its value, the threshold
    back = next(r for r in reasons if r.startswith("recovered"))
    assert "< 240" in back, back
    assert any(r.startswith("probe of the local tier") for r in reasons)


def test_errors_shift_the_route(gateway, openai_up, anthropic_up):
    """error_rate_above: a local model that starts failing sends traffic to the frontier (the local
    target is a fallback route, so the failing requests themselves are still answered)."""
    from tests.doubles import Fail

    openai_up.default, anthropic_up.default = FAST, Reply(text="frontier answer")
    routes = dynamic_route(local="local-first", shift_when={"error_rate_above": 0.3}, probe_every=0)
    routes["local-first"] = {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes=routes, breaker={"failures": 100, "cooldown": 1})
    g = gateway(cfg)
    assert g.gateway.resolve("auto").watch == ["local"]  # not the frontier model the fallback ends on
    assert [ask(g) for _ in range(3)] == ["local answer"] * 3
    openai_up.default = Fail(500, "model crashed")
    answers = [ask(g) for _ in range(6)]
    assert all(a == "frontier answer" for a in answers)  # fallback answered the failing ones
    # error EWMA from 0: 0.3, 0.51 -> the second failure puts it above 0.3; from then on no local call
    assert len([r for r in openai_up.requests if r.status == 500]) == 2
    g.flush()
    shift = next(r.reason for r in g.ledger.query(route="auto") if r.reason.startswith("shift"))
    assert "local error_rate" in shift and "> 0.300" in shift, shift


def test_a_dead_local_model_is_answered_by_the_frontier_and_its_open_breaker_shifts_the_route(
        gateway, openai_up, anthropic_up):
    """A bare local model that fails: each failing request is answered by the frontier (`fall_back`),
    and once its breaker opens the route shifts — whatever the latency thresholds say."""
    from tests.doubles import Fail

    openai_up.default, anthropic_up.default = Fail(503, "loading model"), Reply(text="frontier answer")
    routes = dynamic_route(shift_when={"latency_ms_above": 100_000}, probe_every=0)
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes=routes,
                                breaker={"failures": 3, "cooldown": 60}))
    assert [ask(g) for _ in range(6)] == ["frontier answer"] * 6  # no client saw the local failures
    assert len(openai_up.requests) == 3  # the breaker opened after 3; the route then stopped trying
    route = g.gateway.resolve("auto")
    assert route.state == "frontier"
    g.flush()
    reasons = [r.reason for r in g.ledger.query(route="auto")]
    assert any(r.startswith("fell back to frontier") for r in reasons)
    assert any(r == "shift to frontier: local breaker open -> frontier" for r in reasons), reasons
