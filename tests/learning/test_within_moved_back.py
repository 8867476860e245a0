"""`within.moved_back`: a type the boundary has moved back to the frontier by the below-target rule keeps its
pre-drift verdicts, so its mean can sit just under the target; under `signal` (the default) the prompt signal's
slope still lifts some of its requests over the target and they are served locally; under `type` they follow the
type's tier (frontier) until it moves local again. Scripted stream."""

from __future__ import annotations

import math

import pytest

from tierwise.learning.loop import LearningLoop, LoopSettings

SHORT, LONG = math.log1p(40), math.log1p(2000)


def make_loop(moved_back: str) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        # a change-point test that needs a very long run, so the below-target rule moves the type back first
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0, "drift_credible": 0.9999999999},
        "within": {"enabled": True, "moved_back": moved_back}}))


def moved_back_below_target(loop: LearningLoop) -> None:
    """Short prompts always accepted, long ones 2 in 3 (mean 0.83: local), then every long one rejected until
    the type's mean falls under the target and the boundary sends it back."""
    i = 0
    for _ in range(60):
        long = i % 2 == 1
        loop.plan("qa", f"r{i}", signal=LONG if long else SHORT)
        ok = (not long) or (i // 2) % 3 != 2
        loop.verdict("qa", 1.0 if ok else 0.0, request_id=f"r{i}")
        i += 1
    assert loop.boundary.tier("qa") == "local"
    while loop.boundary.tier("qa") == "local":
        long = i % 2 == 1
        loop.plan("qa", f"r{i}", signal=LONG if long else SHORT)
        move = loop.verdict("qa", 0.0 if long else 1.0, request_id=f"r{i}")
        i += 1
        assert i < 400
    assert move is not None and move.why == "below-target"
    st = loop.boundary.state("qa")
    assert 0.65 < st.mean() < 0.75  # the pre-drift verdicts kept: just under the target
    assert loop.within.slope("qa") < 0.0  # short prompts are the better ones


@pytest.mark.parametrize(("moved_back", "local_expected"), [("signal", True), ("type", False)])
def test_a_moved_back_type_s_short_prompts(moved_back: str, local_expected: bool) -> None:
    loop = make_loop(moved_back)
    moved_back_below_target(loop)
    plans = [loop.plan("qa", f"after{k}", signal=SHORT) for k in range(50)]
    served_local = [p for p in plans if p.tier == "local"]
    if local_expected:
        assert served_local  # today's default: the signal still sends the type's short prompts local
    else:
        assert not served_local  # every request follows the type's tier
    # long prompts go to the frontier either way
    assert all(loop.plan("qa", f"long{k}", signal=LONG).tier == "frontier" for k in range(20))


def test_the_option_changes_nothing_on_a_type_that_never_moved() -> None:
    a, b = make_loop("signal"), make_loop("type")
    tiers = []
    for loop in (a, b):
        out = []
        for i in range(60):
            long = i % 2 == 1
            out.append(loop.plan("qa", f"r{i}", signal=LONG if long else SHORT).tier)
            loop.verdict("qa", 1.0 if (not long) or (i // 2) % 3 != 2 else 0.0, request_id=f"r{i}")
        out += [loop.plan("qa", f"s{k}", signal=LONG if k % 2 else SHORT).tier for k in range(40)]
        tiers.append(out)
    assert tiers[0] == tiers[1]


def test_the_default_is_signal() -> None:
    assert LoopSettings().within.moved_back == "signal"
