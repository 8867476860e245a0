"""Attacks on the fold of dead processes' spend rows (`budgets/spend_members.py`, `budgets/spend_file.py`; costs6),
session 34's review (review34b). A live process's rows folded away are counted twice at the next restore (its own
settlements in the fold and again in its later rows); rows never written are lost to the restore. Each process here is
a `SpendFile` of its own: `flock` locks belong to an open file, so two in one test process exclude each other as two
processes do."""

from __future__ import annotations

import os
import sqlite3
import time

from tierwise.budgets.spend_file import SpendFile

PREFIX = "tw:"
EPOCH = "e1"


def _member(i: int) -> str:
    return f"{i:032x}"


def _save(path: str, member: str, usd: float = 1.0) -> SpendFile:
    f = SpendFile(path, PREFIX)
    f.save(member, EPOCH, [f"{PREFIX}b:cap:* 1 {usd} 10 {usd} 10 3600"], time.time())
    return f


def _members(path: str) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {m for (m,) in db.execute("SELECT DISTINCT member FROM budget_spend")}
    finally:
        db.close()


def _two_dead(path: str) -> None:
    for i in (7, 8):  # (a fold needs two dead members' rows)
        _save(path, _member(i)).members.release()


def test_a_ledger_reached_through_a_symlink_keeps_one_lock_folder(tmp_path):
    (tmp_path / "real").mkdir()
    real = str(tmp_path / "real" / "ledger.db")
    link = str(tmp_path / "ledger.db")
    sqlite3.connect(real).close()
    os.symlink(real, link)
    live = _save(real, _member(1))  # a gateway configured with the real path, running
    _two_dead(real)
    starting = SpendFile(link, PREFIX)  # another, configured with the symlink, starts and folds
    starting.fold(EPOCH, _member(2), time.time())
    # Before: its lock was looked for in link.db.spend/, not found, and the running gateway's rows were folded away
    assert _member(1) in _members(real)
    live.members.release()


def test_a_live_process_whose_lock_file_was_deleted_takes_a_new_one(tmp_path):
    path = str(tmp_path / "ledger.db")
    live = _save(path, _member(1))
    os.unlink(os.path.join(path + ".spend", _member(1) + ".lock"))  # a tmp cleaner
    _save(path, _member(1)).members.release()  # (another handle's save: not the running one)
    live.save(_member(1), EPOCH, [f"{PREFIX}b:cap:* 1 2.0 20 2.0 20 3600"], time.time())  # its next look
    _two_dead(path)
    SpendFile(path, PREFIX).fold(EPOCH, _member(2), time.time())
    assert _member(1) in _members(path)  # before: its rows were folded while it ran
    live.members.release()


def test_a_planted_symlink_does_not_stop_the_fold(tmp_path):
    path = str(tmp_path / "ledger.db")
    _two_dead(path)
    _save(path, _member(9)).members.release()
    lock = os.path.join(path + ".spend", _member(9) + ".lock")
    os.unlink(lock)
    os.symlink(str(tmp_path / "elsewhere"), lock)
    SpendFile(path, PREFIX).fold(EPOCH, _member(2), time.time())  # before: ELOOP, and no fold ever again
    left = _members(path)
    assert _member(7) not in left and _member(8) not in left and _member(9) in left


def test_an_unusable_lock_folder_still_keeps_the_rows(tmp_path):
    path = str(tmp_path / "ledger.db")
    (tmp_path / "ledger.db.spend").write_text("not a folder")
    _save(path, _member(1))  # before: every save failed (FileExistsError), nothing kept for a restore
    assert _members(path) == {_member(1)}
