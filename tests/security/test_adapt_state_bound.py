"""`learned.adapt` keeps up to 2,000 judged pairs' prompts (8,000 characters each) in the route's state file,
which a restart reads only up to `MAX_FILE_BYTES` (64 MiB). Counted in characters, a prompt of control characters
or emoji is 6 or 12 bytes a character in the file's JSON: one client's 2,000 such prompts made a 96-192 MB file,
which the restart refused whole — the route lost its threshold, its demotion and every pair (review26a). A kept
prompt is now bounded by what it takes in the file."""

from __future__ import annotations

import pytest

from tierwise.evaluation.online import PROMPT_CHARS, JudgedPair, OnlineValidator
from tierwise.routers.route_memory import MAX_FILE_BYTES, RouteMemory


@pytest.mark.parametrize("char", ["\x01", "\U0001F600", "語", "\ud800"])
def test_a_full_window_of_hostile_prompts_still_restores(tmp_path, char) -> None:
    v = OnlineValidator(window=2000, min_pairs=20, rounds=20, every=10_000, prompts_kept=2000)
    for i in range(2000):
        v.add(JudgedPair(PROMPT_CHARS, 0.5, 0.5, 1.0, 0.0, "one-key", f"{i} " + char * PROMPT_CHARS))
    path = tmp_path / "state.json"
    m = RouteMemory(path, "r", 0.5, validator=v)
    m.write(m.dump())
    assert path.stat().st_size <= MAX_FILE_BYTES
    v2 = OnlineValidator(window=2000, min_pairs=20, rounds=20, every=10_000, prompts_kept=2000)
    assert RouteMemory(path, "r", 0.5, validator=v2).restore()  # before: refused, the route started fresh
    kept = [p.prompt for p in v2.pairs()]
    shown = "?" if char == "\ud800" else char  # (a lone surrogate: no UTF-8 file holds one)
    assert len(kept) == 2000 and all(p.startswith(f"{i} {shown}") for i, p in enumerate(kept))
    assert kept == [p.prompt for p in v.pairs()]


def test_one_key_flooding_judged_pairs_holds_a_bounded_share_of_the_adaptation() -> None:
    """The online estimate caps one key at `refit_key_share` of its window; the adaptation fits on the newest
    `adapt.window` pairs with a prompt. With the estimate's window larger than the adaptation's, a key at its cap
    (its new pair replacing its own oldest, so its pairs stay the newest) held every one of them: one client chose
    every prompt the router was adapted on (500 of 500 here). Now one key's prompts are capped as its pairs are."""
    from tierwise.routers.adapt import LiveAdapter

    v = OnlineValidator(window=2000, min_pairs=50, rounds=20, every=10_000, key_share=0.25, prompts_kept=500,
                        prompts_floor=100)
    for i in range(1500):  # the route's other clients
        v.add(JudgedPair(30, (i % 10) / 10, 0.5, 1.0, float(i % 2), f"team-{i % 3}", f"question {i} about topic {i % 7}"))
    for i in range(3000):  # one key's flood of easy prompts the weak tier answers as well
        v.add(JudgedPair(30, 0.9, 0.5, 1.0, 1.0, "flood", f"steer {i} trivial words"))
    a = LiveAdapter(v, 0.5, min_pairs=100, window=500)
    used = [p for p in v.pairs() if p.prompt][-500:]
    assert len(used) == 500
    flood = sum(p.key == "flood" for p in used)
    assert flood <= 125, flood  # before: 500
    assert sum(1 for p in v.pairs() if p.prompt) <= 500
    assert a.refit() and a.live is not None and a.live[0].n == 500


def test_the_prompt_count_forgets_keys_that_hold_no_prompt_any_more() -> None:
    """The validator counts each key's kept prompts (for the key's cap); a key whose last prompt left kept a zero
    entry, so the count grew with every key name the route ever saw (10,000 here, for a window of 20)."""
    v = OnlineValidator(window=20, min_pairs=5, rounds=20, every=10_000, key_share=0.5, prompts_kept=10,
                        prompts_floor=5)
    for i in range(10_000):
        v.add(JudgedPair(30, 0.5, 0.5, 1.0, 0.0, f"key-{i}", f"question {i}"))
    assert len(v._key_prompts) <= 10, len(v._key_prompts)  # before: 10,000
    assert sum(v._key_prompts.values()) == v._prompts == sum(1 for p in v.pairs() if p.prompt) == 10


def test_the_largest_state_a_route_can_hold_still_restores(tmp_path) -> None:
    """The largest windows the config allows (100,000 judged pairs, 100,000 re-fit scores) with 2,000 kept prompts
    of emoji: each pair row named its key, so 200-character key names added 26 MB and the file passed what a
    restart reads (74 MB > 64 MiB): the route lost its whole state. Keys are now indices into one list of names."""
    from tierwise.routers.refit import ThresholdRefit

    window, key = 100_000, "k" * 196
    v = OnlineValidator(window=window, min_pairs=50, rounds=50, every=10**9, prompts_kept=2000)
    with v._lock:  # (as a restore adds them: no estimate per pair)
        for i in range(window):
            v._keep(JudgedPair(PROMPT_CHARS, (i % 97) / 97, 0.5, 1.0, float(i % 2), f"{key}{i % 40:04d}",
                               f"{i} " + "\U0001F600" * PROMPT_CHARS if i >= window - 2000 else ""))
    r = ThresholdRefit(0.5, 0.3, window=window, min_scores=100)
    for i in range(window):
        r.add((i % 89) / 89, f"{key}{i % 40:04d}")
    path = tmp_path / "state.json"
    m = RouteMemory(path, "r", 0.3, refit=r, validator=v)
    m.write(m.dump())
    assert path.stat().st_size <= MAX_FILE_BYTES, path.stat().st_size  # before: 74 MB
    v2 = OnlineValidator(window=window, min_pairs=50, rounds=50, every=10**9, prompts_kept=2000)
    r2 = ThresholdRefit(0.5, 0.3, window=window, min_scores=100)
    assert RouteMemory(path, "r", 0.3, refit=r2, validator=v2).restore()
    assert v2.pairs() == v.pairs() and r2.snapshot() == r.snapshot()
