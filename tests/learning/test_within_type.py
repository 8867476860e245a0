"""Within-type routing (`within`): a request takes the tier its own acceptance estimate calls for — its type's
posterior moved by a prompt signal with a per-type slope learned from the verdicts. Scripted streams."""

from __future__ import annotations

import math

from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.within import WithinSettings, WithinType, fit_slope

SHORT, LONG = math.log1p(40), math.log1p(2000)


def make_loop(enabled: bool = True) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0},
        "within": {"enabled": enabled}}))


def feed(loop: LearningLoop, task_type: str, long_accepted: float, n: int = 60) -> None:
    """Alternating short and long prompts; short answers always accepted, the given share of long ones."""
    for i in range(n):
        rid = f"{task_type}-{i}"
        long = i % 2 == 1
        loop.plan(task_type, rid, signal=LONG if long else SHORT)
        j = i // 2  # accepted long answers spread evenly: floor((j+1) s) - floor(j s) of them at the j-th
        ok = (not long) or math.floor((j + 1) * long_accepted) > math.floor(j * long_accepted)
        loop.verdict(task_type, 1.0 if ok else 0.0, request_id=rid)


def test_fit_slope_is_the_posterior_mode_and_shrinks_to_zero_without_evidence() -> None:
    assert fit_slope([], 0.0, 1.0) == 0.0
    rows = [(-1.0, 1.0), (1.0, 0.0)] * 20
    b = fit_slope(rows, 0.0, 1.0)
    # the gradient of the penalised log-likelihood vanishes at the mode
    grad = -b + sum(z * (y - 1 / (1 + math.exp(-b * z))) for z, y in rows)
    assert b < -1.0 and abs(grad) < 1e-6
    assert abs(fit_slope(rows, 0.0, 0.1)) < abs(b)  # a tighter prior pulls the slope toward zero


def test_a_type_uses_its_slope_only_after_min_verdicts() -> None:
    w = WithinType(WithinSettings(enabled=True, min_verdicts=10))
    for i in range(9):
        z = w.standardise("qa", float(i % 2))
        w.record("qa", z, 1.0 - i % 2, 0.5)
    assert w.slope("qa") == 0.0 and w.acceptance("qa", 0.8, 1.0) == 0.8
    z = w.standardise("qa", 1.0)
    w.record("qa", z, 0.0, 0.5)
    assert w.slope("qa") < 0.0 and w.acceptance("qa", 0.8, 1.0) < 0.8 < w.acceptance("qa", 0.8, -1.0)


def test_hard_requests_of_a_local_type_go_to_the_frontier_and_easy_ones_of_a_frontier_type_go_local() -> None:
    loop = make_loop()
    feed(loop, "easy", 2 / 3)  # acceptance 0.83: the type is local
    feed(loop, "hard", 0.2)  # acceptance 0.6: the type stays on the frontier
    assert loop.boundary.tier("easy") == "local" and loop.boundary.tier("hard") == "frontier"
    assert loop.within.slope("easy") < 0.0 and loop.within.slope("hard") < 0.0

    long_easy = [loop.plan("easy", f"le{i}", signal=LONG) for i in range(100)]
    assert all(p.tier == "frontier" for p in long_easy)
    assert {p.reason for p in long_easy if not p.judge} == {"within-type"}
    judged = [p for p in long_easy if p.judge]
    assert judged and all(p.shadow and p.reason.endswith("(within-type)") for p in judged)  # verdicts from shadows
    assert loop.plan("easy", "se", signal=SHORT).tier == "local"

    short_hard = loop.plan("hard", "sh", signal=SHORT)
    assert short_hard.tier == "local" and not short_hard.shadow
    assert loop.plan("hard", "lh", signal=LONG).tier == "frontier"


def test_disabled_or_without_a_signal_the_type_decides() -> None:
    off = make_loop(enabled=False)
    feed(off, "easy", 2 / 3)
    assert off.plan("easy", "x", signal=LONG).tier == "local" and not off.within.types
    on = make_loop()
    feed(on, "easy", 2 / 3)
    assert on.plan("easy", "y").tier == "local"  # no signal given
    assert on.plan("easy", "z", signal=float("nan")).tier == "local"


def test_the_slopes_survive_a_restart() -> None:
    loop = make_loop()
    feed(loop, "easy", 2 / 3)
    again = make_loop()
    again.load(loop.dump())
    assert again.within.slope("easy") == loop.within.slope("easy") < 0.0
    assert again.plan("easy", "a", signal=LONG).tier == loop.plan("easy", "a", signal=LONG).tier == "frontier"
    broken = make_loop()
    broken.load({**loop.dump(), "within": {"easy": {"n": "x"}, "ok": {"n": 1, "mean": 1.0, "m2": 0.0, "beta": 0.0}}})
    assert set(broken.within.types) == {"ok"}
