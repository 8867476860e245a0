"""`value.reexplore: sample`: how a type sent back below the target before is judged while it is explored again.

With `boundary.move_back_keep` a type sent back below the target keeps a few verdicts' worth of evidence, and the value
of information, seeing it near the target again, asks for a verdict on every one of its requests until it moves local
or the verdicts settle it (bench/RESULTS.md, "Issue 21, round 21": 17-58 verdicts per return, every request judged).
`reexplore: sample` judges only the `schedule.sample_rate` hash sample of those requests: the same rule for whether a
verdict is worth buying, spread over more of the type's requests. A type never sent back is explored as before.
"""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from tests.learning.replay_loop import loop_with
from tests.learning.test_returned_light import come_back, sent_back
from tierwise.learning.loop import LearningLoop
from tierwise.learning.schedule import unit_hash
from tierwise.learning.value import ValueSettings


def sent_back_with(reexplore: str, sample_rate: float = 0.10) -> LearningLoop:
    loop = sent_back("full")
    loop.settings.value.reexplore = reexplore  # type: ignore[assignment]
    loop.settings.schedule.sample_rate = sample_rate
    st = loop.boundary.state("qa")
    assert st.tier == "frontier" and st.sent_back == 1
    return loop


def judged_ids(loop: LearningLoop, n: int, tag: str) -> tuple[set[str], set[str]]:
    """n frontier requests with no verdicts coming back (the evidence stays as the move back left it): the ids judged
    for value, and those judged as audits."""
    value, audits = set(), set()
    for i in range(n):
        rid = f"{tag}{i}"
        plan = loop.plan("qa", rid)
        if plan.judge:
            (audits if plan.reason.startswith("audit") else value).add(rid)
    return value, audits


def test_full_judges_every_request_of_the_re_explored_type() -> None:
    value, _ = judged_ids(sent_back_with("full"), 400, "f")
    assert len(value) >= 395  # every request but the few the shadow audits take


@pytest.mark.parametrize("rate", [0.10, 0.20])
def test_sample_judges_exactly_the_sample_rate_hash_sample(rate: float) -> None:
    loop = sent_back_with("sample", rate)
    value, audits = judged_ids(loop, 400, "s")
    sample = {f"s{i}" for i in range(400) if unit_hash(f"s{i}", "reexplore") < rate}
    assert value == sample
    assert 0.5 * rate * 400 < len(sample) < 1.5 * rate * 400
    assert len(audits) <= 3  # the frontier's shadow audits (0.5%) are unchanged


def test_a_type_never_sent_back_is_explored_as_under_full() -> None:
    got = {}
    for mode in ("full", "sample"):
        loop = loop_with(reexplore=mode)
        for i in range(30):
            loop.plan("other", f"o{i}")  # traffic, so "qa" has a share of it
        got[mode] = [loop.plan("qa", f"n{i}") for i in range(200)]
        st = loop.boundary.state("qa")
        assert st.tier == "frontier" and st.sent_back == 0
    assert got["sample"] == got["full"]
    assert sum(p.judge for p in got["sample"]) > 150


@pytest.mark.parametrize("seed", [31, 32])
def test_a_good_type_still_comes_back_local_on_the_same_verdicts(seed: int) -> None:
    """The return takes about the verdicts it takes under `full`, over about 1/sample_rate as many requests."""
    got = {}
    for mode in ("full", "sample"):
        loop = sent_back_with(mode)
        rng = random.Random(seed)
        verdicts = 0
        for i in range(3000):
            plan = loop.plan("qa", f"b{i}")
            if plan.judge:
                verdicts += 1
                loop.verdict("qa", 1.0 if rng.random() < 0.95 else 0.0, request_id=f"b{i}")
            if loop.boundary.tier("qa") == "local":
                got[mode] = (i + 1, verdicts)
                break
    assert set(got) == {"full", "sample"}
    (n_full, v_full), (n_sample, v_sample) = got["full"], got["sample"]
    assert v_sample <= v_full + 5
    assert n_sample > 3 * n_full


def test_sampling_stops_once_the_type_is_local_again() -> None:
    loop = come_back(sent_back_with("sample"))
    st = loop.boundary.state("qa")
    assert st.tier == "local" and st.sent_back == 1
    assert all(not loop.plan("qa", f"l{i}").reason.startswith("skip-reexplore") for i in range(200))


def test_the_default_is_full_and_bad_values_are_refused() -> None:
    assert ValueSettings().reexplore == "full"
    with pytest.raises(ValidationError):
        ValueSettings(reexplore="sometimes")
