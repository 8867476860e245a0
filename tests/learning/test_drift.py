"""The change-point test on a local task type's verdicts: fires on an injected drop, not on a stationary stream."""

from __future__ import annotations

import random

from tierwise.learning.boundary import Boundary, BoundarySettings
from tierwise.learning.drift import Cusum, alternative, threshold, update

H = threshold(0.999)  # ln(1000)


def stream(p: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [1.0 if rng.random() < p else 0.0 for _ in range(n)]


def test_no_alarm_on_a_stationary_stream() -> None:
    c = Cusum()
    fired = [update(c, x, 0.88, 0.75, H) for x in stream(0.88, 5000, seed=7)]
    assert not any(fired)


def test_fires_soon_after_an_injected_drop_and_estimates_the_change() -> None:
    c = Cusum()
    before = stream(0.88, 300, seed=7)
    after = stream(0.30, 100, seed=8)
    assert not any(update(c, x, 0.88, 0.75, H) for x in before)
    fired_at, run = None, None
    for i, x in enumerate(after):
        run = update(c, x, 0.88, 0.75, H)
        if run is not None:
            fired_at = i
            break
    assert fired_at is not None and fired_at < 15
    k, good = run
    assert k <= fired_at + 1 + 2  # the post-change run starts near the drop, not at the start of the stream
    assert good / k < 0.5
    assert c.s == 0.0 and not c.watching()  # restarted


def test_alternative_is_a_real_drop() -> None:
    assert alternative(0.85, 0.75) == 0.5  # 2t - 1 caps the mirror (0.65): small shifts are the mean's job
    assert alternative(0.99, 0.75) == 0.5
    assert 0.0 < alternative(0.4, 0.75) < 0.4


def test_boundary_moves_back_on_the_test_and_keeps_only_post_change_evidence() -> None:
    b = Boundary(BoundarySettings(quality_target=0.75, credible=0.9, discount=0.99, drift_credible=0.999))
    for x in stream(0.9, 300, seed=1):
        b.observe("qa", x)
    assert b.tier("qa") == "local"
    moved = None
    for i, x in enumerate(stream(0.2, 100, seed=2)):  # noqa: B007 (i is read after the loop)
        moved = b.observe("qa", x)
        if moved:
            break
    assert moved is not None and moved.to == "frontier" and moved.why == "drift"
    assert "change-point test fired" in moved.sentence()
    st = b.state("qa")
    # the posterior holds the test's run (since its statistic last left zero), not the ~100 verdicts of memory
    assert st.a + st.b < 2 + i + 1 + 20
    assert st.mean() < 0.6
