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
