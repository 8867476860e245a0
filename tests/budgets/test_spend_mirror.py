"""A gateway's mirror of the settled spend (budgets/spend_mirror.py): a sample covers its own settlements that Redis ran
before it, and those after it are offered on top, once."""

from __future__ import annotations

from tierwise.budgets.spend_mirror import SpendMirror


def test_own_settlements_before_a_sample_are_not_offered_twice():
    m = SpendMirror()
    m.own("k", 1, 0.5, 10, when=100.0, expire_s=3600, now=0.0)
    m.own("k", 1, 0.25, 5, when=102.0, expire_s=3600, now=0.0)
    assert m.offers(0.0) == ["k 1 0.75 15 0.75 15 3600"]
    m.sample(101.0, ["k 1", "2.5", "40", 3000], now=0.0)  # another gateway's 2.0 plus this one's first
    assert m.offers(0.0) == ["k 1 2.75 45 0.75 15 3000"]
    m.own("k", 1, 0.125, 1, when=100.5, expire_s=3600, now=0.0)  # (a reply read late: in the sample)
    m.sample(99.0, ["k 1", "1.0", "1", 3000], now=0.0)  # an older look: ignored
    assert m.offers(0.0)[0].split()[2:4] == ["2.75", "45"]


def test_closed_counters_are_forgotten():
    m = SpendMirror()
    m.own("k", 1, 0.5, 10, when=1.0, expire_s=60, now=0.0)
    assert m.offers(61.0) == [] and not m.counters
