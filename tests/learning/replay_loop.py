"""A learning loop at the replay's settings (bench/learning_loop.py), for the tests of its audit and watch modes."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from types import ModuleType

from tierwise.learning.loop import LearningLoop, LoopSettings

BENCH = Path(__file__).resolve().parents[2] / "bench"


def replay_module() -> ModuleType:
    """bench/learning_loop.py, imported from its folder."""
    sys.path.insert(0, str(BENCH))
    try:
        import learning_loop
    finally:
        sys.path.remove(str(BENCH))
    return learning_loop


def replay_settings(*flags: str) -> LoopSettings:
    """The loop settings the replay runs with under these command-line flags."""
    replay = replay_module()
    return replay.loop_settings(replay.parse_args(list(flags)))


def loop_with(**value) -> LearningLoop:
    # the replay's settings (bench/learning_loop.py): credible 0.60, the credible move back, no discount
    return LearningLoop("r", LoopSettings.model_validate({
        "sampling": "value",
        "value": {"horizon": 10_000, "saving_usd": 0.01, "judge_usd": 0.015, "shadow_usd": 0.01, **value},
        "schedule": {"audit_rate": 0.02, "shadow_audit_rate": 0.005},
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0, "move_back": "credible"}}))


def near_target(verdicts: list[int], watch: str = "decide", **boundary: object) -> LearningLoop:
    """A loop whose change test takes a local type's lower 0.90 credible edge as its unchanged rate (the reflective
    route's `drift_p0_credible`), with these `boundary` settings, after `verdicts` on type `qa` (each request
    planned, then judged)."""
    loop = loop_with(watch=watch)
    loop.boundary.settings.drift_p0_credible = 0.9
    for key, value in boundary.items():
        setattr(loop.boundary.settings, key, value)
    for i, v in enumerate(verdicts):
        loop.plan("qa", f"e{i}")
        loop.verdict("qa", float(v), request_id=f"e{i}")
    return loop


def settle_local(loop: LearningLoop, n: int = 300) -> None:
    """A type judged on every request, 90% accepted: local, its change test at zero."""
    for i in range(n):
        loop.plan("qa", f"q{i}")
        loop.verdict("qa", 0.0 if i % 10 == 5 else 1.0)
    st = loop.boundary.state("qa")
    assert st.tier == "local" and st.cusum.s == 0.0


def recovered_after(loop: LearningLoop, p: float, n: int, seed: int) -> tuple[int | None, int]:
    """A type the loop has sent back, then requests whose local answers are accepted with probability p: the
    request at which it is local again (None: not within n) and the verdicts bought."""
    rng = random.Random(seed)
    judged = 0
    for i in range(n):
        plan = loop.plan("qa", f"after{i}")
        if plan.judge:
            judged += 1
            loop.verdict("qa", 1.0 if rng.random() < p else 0.0, request_id=f"after{i}")
        if loop.boundary.tier("qa") == "local":
            return i, judged
    return None, judged
