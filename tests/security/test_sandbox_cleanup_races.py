"""The weak sandbox's folder is removed by the gateway (as root, for a root gateway) after its run:
while that happens, another process of the run's user (a concurrent run, when every run is the
same `run_as` user) can change the tree. Each race is forced at the moment it would have to be
won: a subfolder swapped for a symlink between the listing and the chmod, a subfolder moved out
of the tree while the clean-up is inside it. The clean-up must never act outside the tree."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tierwise.sandbox import cleanup


def _tree(root: Path) -> Path:
    run = root / "tierwise-sandbox-run"
    (run / "a" / "b" / "c").mkdir(parents=True)
    (run / "a" / "b" / "c" / "f.txt").write_text("x")
    return run


def test_a_subfolder_swapped_for_a_symlink_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: os.chmod(child, 0o700, dir_fd=...) followed the symlink, so the folder it named (any
    folder of the host: /etc) became 0700 by root's hand."""
    run = _tree(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    outside.chmod(0o755)
    real = cleanup._empty_or_first_subfolder
    swapped = []

    def swap_then_answer(fd: int, left: list[int]) -> str | None:
        name = real(fd, left)
        if name == "a" and not swapped:  # the other process wins the race here
            os.rename("a", "a-moved", src_dir_fd=fd, dst_dir_fd=fd)
            os.symlink(str(outside), "a", dir_fd=fd)
            swapped.append(1)
        return name

    monkeypatch.setattr(cleanup, "_empty_or_first_subfolder", swap_then_answer)
    cleanup.remove_tree(str(run))
    assert swapped
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755
    assert outside.is_dir()


def test_a_subfolder_moved_out_while_being_emptied_does_not_lead_outside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the walk went back up through '..' of the folder it was in; moved meanwhile into
    another folder (the other process may move it anywhere it may write: /tmp), '..' led there, and
    the clean-up, as root, emptied that folder: every file in it unlinked."""
    run = _tree(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "someone-else-s-file").write_text("keep me")
    real = cleanup._empty_or_first_subfolder
    moved = []

    def move_then_answer(fd: int, left: list[int]) -> str | None:
        name = real(fd, left)
        if name is None and not moved and (run / "a" / "b").exists() and not (run / "a" / "b" / "c").exists():
            os.rename(run / "a", elsewhere / "a")  # the clean-up is inside a/b now
            moved.append(1)
        return name

    monkeypatch.setattr(cleanup, "_empty_or_first_subfolder", move_then_answer)
    cleanup.remove_tree(str(run))
    assert moved
    assert (elsewhere / "someone-else-s-file").read_text() == "keep me"
