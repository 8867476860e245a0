"""`within.pool: partial`: each type's within-type slope shrunk toward the slope pooled over every type
(DerSimonian-Laird random effects, learning/slope_pool.py). Scripted verdicts."""

from __future__ import annotations

import math

from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.slope_pool import pooled_slopes
from tierwise.learning.within import WithinSettings, WithinType

SHORT, LONG = math.log1p(40), math.log1p(2000)


def feed(w: WithinType, task_type: str, rows: list[tuple[float, float]], mean: float = 0.75) -> None:
    for x, y in rows:
        z = w.standardise(task_type, x)
        w.record(task_type, z, y, mean)


def harder_when_long(n: int) -> list[tuple[float, float]]:
    """Short prompts accepted, long ones accepted half the time: a clear negative slope."""
    return [(SHORT, 1.0) if i % 2 == 0 else (LONG, float(i % 4 == 1)) for i in range(n)]


def noisy_opposite(n: int) -> list[tuple[float, float]]:
    """A few verdicts where, by luck, the long prompts did a little better: a positive slope on thin evidence."""
    return [(SHORT, float(i % 6 != 0)) if i % 2 == 0 else (LONG, 1.0) for i in range(n)]


def test_without_spread_every_type_takes_the_pooled_slope() -> None:
    # slopes whose scatter their standard errors explain (Q <= k - 1): no evidence the types differ
    est = {"a": (-0.30, 0.09), "b": (-0.10, 0.09), "c": (-0.20, 0.09)}
    out = pooled_slopes(est)
    assert all(abs(v - (-0.20)) < 1e-12 for v in out.values())


def test_with_spread_a_well_measured_slope_keeps_most_of_itself() -> None:
    est = {"a": (-2.0, 0.01), "b": (0.0, 0.01), "c": (2.0, 0.01), "d": (0.1, 1.0)}
    out = pooled_slopes(est)
    assert out["a"] < -1.9 and out["c"] > 1.9  # tau^2 far above their variances
    assert abs(out["d"]) < 0.2  # a noisy one is pulled to the pooled value (~0)


def test_fewer_than_three_types_are_not_pooled() -> None:
    est = {"a": (-1.0, 0.1), "b": (1.0, 0.1)}
    assert pooled_slopes(est) == {"a": -1.0, "b": 1.0}


def test_a_thin_slope_against_the_other_types_is_pulled_to_their_sign() -> None:
    settings = {"enabled": True, "min_verdicts": 10}
    own, pooled = WithinType(WithinSettings(**settings)), WithinType(WithinSettings(**settings, pool="partial"))
    for w in (own, pooled):
        for t in ("t1", "t2", "t3", "t4"):
            feed(w, t, harder_when_long(80))
        feed(w, "thin", noisy_opposite(14))
    assert own.slope("thin") > 0.0  # alone, its own luck
    assert pooled.slope("thin") < 0.0  # pooled: the other types' sign
    assert pooled.slope("t1") < 0.0
    # the request estimate follows: under pooling a long prompt of "thin" is less likely accepted than a short one
    assert pooled.acceptance("thin", 0.75, 1.0) < 0.75 < pooled.acceptance("thin", 0.75, -1.0)
    assert own.acceptance("thin", 0.75, 1.0) > 0.75
    # off (the default) is the type's own slope, bit for bit
    assert WithinSettings().pool == "off"


def test_pooling_survives_a_save_and_load() -> None:
    w = WithinType(WithinSettings(enabled=True, min_verdicts=10, pool="partial"))
    for t in ("t1", "t2", "t3"):
        feed(w, t, harder_when_long(60))
    feed(w, "thin", noisy_opposite(14))
    back = WithinType(WithinSettings(enabled=True, min_verdicts=10, pool="partial"))
    back.load(w.dump())
    for t in ("t1", "t2", "t3", "thin"):
        assert math.isclose(back.slope(t), w.slope(t), rel_tol=1e-9, abs_tol=1e-12)
    # a state saved without pooling (no variances) is pooled on load
    plain = WithinType(WithinSettings(enabled=True, min_verdicts=10))
    for t in ("t1", "t2", "t3"):
        feed(plain, t, harder_when_long(60))
    feed(plain, "thin", noisy_opposite(14))
    assert plain.slope("thin") > 0.0
    back.load(plain.dump())
    assert back.slope("thin") < 0.0


def test_the_loop_routes_a_thin_types_long_prompts_by_the_pooled_sign() -> None:
    def loop(pool: str) -> LearningLoop:
        lp = LearningLoop("r", LoopSettings.model_validate({
            "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0},
            "within": {"enabled": True, "pool": pool}}))
        k = 0
        for t, rows in [("t1", harder_when_long(80)), ("t2", harder_when_long(80)), ("t3", harder_when_long(80)),
                        ("thin", noisy_opposite(14))]:
            for x, y in rows:
                rid = f"r{k}"
                k += 1
                lp.plan(t, rid, signal=x)
                lp.verdict(t, y, request_id=rid)
        return lp

    own, pooled = loop("off"), loop("partial")
    assert own.within.slope("thin") > 0.0 > pooled.within.slope("thin")
