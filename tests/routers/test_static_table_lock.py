"""Processes starting cold at once distil the static token table once (routers/static_tokens.py `_distilling`): the
suite's two workers each paid its ~30 s of CPU at the same moment on a fresh machine's empty cache."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

import tierwise.routers.static_tokens as st
from tests.harness import wait_for


def _waits_on_lock(lock: Path) -> bool:
    """Whether a flock on `lock` has a blocked waiter (Linux's /proc/locks lists waiters as `N: -> FLOCK ...`)."""
    if not lock.exists():
        return False
    inode = f":{os.stat(lock).st_ino} "
    return any("-> FLOCK" in line and inode in line for line in Path("/proc/locks").read_text().splitlines())


def test_two_cold_starts_at_once_distil_the_table_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc/locks").exists():
        pytest.fail("/proc/locks is where this test sees the second start wait")
    path = tmp_path / "static_tokens" / "table.npy"
    monkeypatch.setattr(st, "_cache_path", lambda model: path)
    distilled: list[str] = []
    second_distils = threading.Event()
    tables: list[np.ndarray] = []

    def load() -> None:
        tables.append(st._table.__wrapped__("m"))

    second = threading.Thread(target=load)

    def distil(model: str) -> np.ndarray:
        distilled.append(model)
        if len(distilled) == 1:  # the first start, mid-distillation: the second start begins now
            second.start()
            # it either distils too (before: its own ~30 s) or waits for this one's file
            assert wait_for(lambda: second_distils.is_set() or _waits_on_lock(path.with_suffix(".lock")), 60)
        else:
            second_distils.set()
        return np.full((5, st.DIMS), len(distilled), np.float16)

    monkeypatch.setattr(st, "_distil", distil)
    load()
    second.join(60)
    assert distilled == ["m"], "the second start distilled the table again"
    assert len(tables) == 2 and np.array_equal(tables[0], tables[1])  # it read the first one's file
