"""review30b: the process that removes the rest of a big folder (tierwise.sandbox.cleanup, session 30). Each test
failed before its fix."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import unavailable
from tierwise.sandbox import cleanup, orphans

NOBODY = 65534


@pytest.fixture
def shm() -> Iterator[str]:
    """A folder on /dev/shm, where a weak run's folder is under Landlock alone (tmpfs: the newest entry listed first)."""
    if not os.path.isdir("/dev/shm"):
        unavailable("no /dev/shm")
    top = tempfile.mkdtemp(prefix="tw-review30b-", dir="/dev/shm")
    os.chmod(top, 0o1777)  # (as /dev/shm itself)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def _files(folder: str, n: int, uid: int | None = None) -> None:
    for i in range(n):
        path = os.path.join(folder, f"f{i}")
        open(path, "w").close()
        if uid is not None:
            os.lchown(path, uid, uid)


def test_the_gateway_walks_no_more_than_its_share_when_the_process_cannot_do_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the process of its own could not start (or was killed at its 600 s), the gateway walked the whole rest
    itself, unbounded, in its worker thread with the GIL: the very cost the process is there to take off it (400 of
    400 files here). Now the rest stays for the next sweep of the folders no process holds (tierwise.sandbox.orphans),
    `ENTRIES` more each time."""
    monkeypatch.setattr(cleanup, "ENTRIES", 20)

    def cannot_start(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError(2, "no interpreter")

    monkeypatch.setattr(cleanup.subprocess, "run", cannot_start)
    run = tmp_path / "run"
    for d in range(4):
        (run / f"d{d}").mkdir(parents=True)
        _files(str(run / f"d{d}"), 100)
    unlinked: list[str] = []
    real_unlink = os.unlink

    def unlink(path: str, *, dir_fd: int | None = None) -> None:
        unlinked.append(path)
        real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(cleanup.os, "unlink", unlink)
    assert not cleanup.remove_tree(str(run))
    assert len(unlinked) <= 20, len(unlinked)
    monkeypatch.setattr(cleanup, "ENTRIES", 10_000)
    assert cleanup.remove_tree(str(run))  # (the next sweep's)


def _root() -> None:
    if os.geteuid() != 0:
        unavailable("the gateway is not root: the process is the gateway's own user already")


def test_the_process_has_only_the_rights_of_the_folder_s_owner(shm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A root gateway's process removed the rest of a run's folder as root, every capability kept: whatever the run
    (or, through the sweep of /dev/shm, any local user) put in the tree, root's DAC override removed it. Played here
    with a 0700 folder of root's inside a folder of nobody's: nobody may not empty it, and now neither does the
    process (before: removed)."""
    _root()
    monkeypatch.setattr(cleanup, "ENTRIES", 5)
    run = os.path.join(shm, "run")
    os.mkdir(run)
    roots = os.path.join(run, "roots")
    os.mkdir(roots, 0o700)
    open(os.path.join(roots, "keep"), "w").close()
    _files(run, 30, NOBODY)  # (made after it: listed first, the gateway's share ends before it)
    os.lchown(run, NOBODY, NOBODY)
    assert not cleanup.remove_tree(run)
    assert os.path.exists(os.path.join(roots, "keep"))
    assert not os.path.lexists(os.path.join(run, "f0"))  # (the owner's files went)


def test_a_run_s_big_folder_is_removed_by_its_owner(shm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The common case still works: a big folder of nobody's, one subfolder write-only (mode 0300), emptied by the
    process as nobody (its interpreter shown to nobody where it cannot reach it: here pyenv's, under root's 0700
    home)."""
    _root()
    monkeypatch.setattr(cleanup, "ENTRIES", 5)
    run = os.path.join(shm, "run")
    os.mkdir(run)
    hidden = os.path.join(run, "write-only")
    os.mkdir(hidden)
    _files(hidden, 3, NOBODY)
    os.chmod(hidden, 0o300)
    _files(run, 30, NOBODY)
    for path in (run, hidden):
        os.lchown(path, NOBODY, NOBODY)
    assert cleanup.remove_tree(run)


def test_a_root_gateway_sweeps_no_folder_of_another_local_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep of the world-writable folders (/tmp, /dev/shm) removed, as root, any unlocked folder named
    `tierwise-sandbox-*` whoever owned it: a local user's own, and one a local user made to race the walk as root (a
    subfolder swapped for a hard link between the listing and the chmod). Now only root's and the sandbox users'."""
    _root()
    place = tempfile.mkdtemp(prefix="tw-review30b-sweep-", dir="/tmp")
    try:
        os.chmod(place, 0o1777)
        planted, runs = os.path.join(place, "tierwise-sandbox-planted"), os.path.join(place, "tierwise-sandbox-run")
        for folder, uid in ((planted, 12345), (runs, NOBODY)):
            os.mkdir(folder)
            _files(folder, 3, uid)
            os.lchown(folder, uid, uid)
        monkeypatch.setattr(cleanup, "ENTRIES", 10_000)
        assert orphans.sweep((place,), min_age_s=0) == [runs]
        assert sorted(os.listdir(planted)) == ["f0", "f1", "f2"]
    finally:
        shutil.rmtree(place, ignore_errors=True)
