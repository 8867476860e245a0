"""`request_model.judge_served`: the text model, pooled over every task type, serves requests of a frontier-tier type
locally when it rates them above the target, while the type's own evaluation (settled on the frontier) no longer
buys verdicts. With `judge_served: M` the first M such requests of the type are judged, then the
`judge_served_rate` sample; the verdicts go into the type's posterior and the model's rows as any other. Scripted
streams through `LearningLoop` (the code the `reflective` route and the replay both run)."""

from __future__ import annotations

import pytest

from tests.learning.test_request_type_offset import PROMPT, feed  # one prompt template for both types
from tierwise.learning.loop import LearningLoop, LoopSettings


def make_loop(**model) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        # a local type is judged on every use; a frontier type stops being judged (no audits) once it is unlikely
        # to reach the target after 20 verdicts
        "schedule": {"first_uses": 1000, "shadow_stop_after": 20, "shadow_audit_rate": 0.0},
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0},
        "request_model": {"kind": "text", "weight": 1.0, "min_rows": 20, "refit_every": 5, "alpha": 3.0, **model}}))


def trained(**model) -> LearningLoop:
    loop = make_loop(**model)
    feed(loop, "good", 120, 10)  # 0.90: moves local, and fills the model's rows
    feed(loop, "weak", 20, 2)  # 0.50 on 20 verdicts: on the frontier, no longer judged
    assert loop.boundary.tier("good") == "local" and loop.boundary.tier("weak") == "frontier"
    assert loop.unlikely_local("weak")
    return loop


def probes(loop: LearningLoop, n: int) -> list:
    return [loop.plan("weak", f"probe-{j}", text=PROMPT.format(j=500 + j, w="window"))
            for j in range(n)]


def test_without_the_option_the_model_serves_the_frontier_type_locally_unjudged() -> None:
    plans = probes(trained(), 30)
    assert all(p.tier == "local" for p in plans)  # the pooled model rates its requests like the good type's
    assert not any(p.judge for p in plans)


def test_the_first_m_served_requests_are_judged_then_the_sample() -> None:
    loop = trained(judge_served=5, judge_served_rate=0.0)
    plans = probes(loop, 30)
    assert all(p.tier == "local" for p in plans)
    assert [p.judge for p in plans] == [True] * 5 + [False] * 25
    assert all(not p.shadow for p in plans)  # the served answer is the one judged
    assert loop.served_local["weak"] == 30
    every = probes(trained(judge_served=5, judge_served_rate=1.0), 30)
    assert all(p.judge for p in every)


def test_the_verdicts_feed_the_types_posterior_and_the_models_rows() -> None:
    loop = trained(judge_served=5, judge_served_rate=0.0)
    st = loop.boundary.state("weak")
    before = st.a + st.b
    rm = loop.request_model
    rows = len(rm.rows)
    plans = probes(loop, 5)
    for j, p in enumerate(plans):
        assert p.judge
        loop.verdict("weak", 0.0, request_id=f"probe-{j}")
    st = loop.boundary.state("weak")
    assert st.a + st.b == pytest.approx(before + 5)
    assert len(rm.rows) == rows + 5


def test_off_by_default_and_the_counts_survive_a_restore(tmp_path) -> None:
    from pydantic import ValidationError

    from tierwise.learning.request_model_settings import RequestModelSettings

    assert RequestModelSettings().judge_served is None
    for bad in ({"judge_served": 0}, {"judge_served": 5, "judge_served_rate": 1.5}):
        with pytest.raises(ValidationError):
            RequestModelSettings(**bad)
    loop = trained(judge_served=5, judge_served_rate=0.0)
    probes(loop, 3)
    path = tmp_path / "state.json"
    loop.save(path)
    again = make_loop(judge_served=5, judge_served_rate=0.0)
    assert again.restore(path)
    assert again.served_local == {"weak": 3}
