"""The weak sandbox's folders of a gateway process that died without removing them, and their removal.

A weak run's folder (`tierwise-sandbox-*`, in the temporary folder or on /dev/shm) and the process's stage folder
(`tierwise-stage-*`) are removed by the process that made them: the run's on its way out, the stage at exit. A
process killed outright (`kill -9`, the OOM killer, a test that kills its gateway) left both, and nothing removed
them: on /dev/shm up to `memory_mb + work_mb` of RAM each, on the disk up to the run's files (review26a: 7 pairs
left in /tmp in 40 minutes by one test of the suite). Each folder is now held by an exclusive `flock` on a
descriptor of it for as long as it is in use; the kernel drops the lock when its process dies, however it dies. A
process's first weak run (and every `EVERY_S` after) removes the folders of that kind nobody holds, older than
`MIN_AGE_S` (a folder just made is not yet locked)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import tempfile
import time

from tierwise.sandbox.cleanup import remove_tree

log = logging.getLogger("tierwise.sandbox")

PREFIXES = ("tierwise-sandbox-", "tierwise-stage-")
MIN_AGE_S = 60.0
EVERY_S = 600.0
_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_held: dict[str, int] = {}  # this process's folders in use: path -> the locked descriptor
_next_sweep = [0.0]


def hold(folder: str) -> None:
    """Lock `folder` for this process until `release` (or its death). Never raises: an unheld folder is only
    one a later sweep may remove once it is `MIN_AGE_S` old, so a run that cannot lock it is not refused."""
    try:
        fd = os.open(folder, _OPEN)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return
    _held[folder] = fd


def release(folder: str) -> None:
    fd = _held.pop(folder, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def sweep_due(now: float | None = None) -> bool:
    now = time.monotonic() if now is None else now
    if now < _next_sweep[0]:
        return False
    _next_sweep[0] = now + EVERY_S
    return True


def sweep(places: tuple[str, ...] | None = None, min_age_s: float | None = None) -> list[str]:
    """Remove the weak sandbox's folders in `places` (default: the temporary folder and /dev/shm) that no living
    process holds; the paths removed. Never raises."""
    removed, age = [], MIN_AGE_S if min_age_s is None else min_age_s
    for place in places if places is not None else (tempfile.gettempdir(), "/dev/shm"):
        try:
            names = [n for n in os.listdir(place) if n.startswith(PREFIXES)]
        except OSError:
            continue
        for name in names:
            path = os.path.join(place, name)
            if path not in _held and _orphan(path, age) and remove_tree(path):
                removed.append(path)
    if removed:
        log.info("sandbox: removed %d folder(s) of runs whose gateway process died: %s", len(removed),
                 ", ".join(removed[:5]))
    return removed


def _orphan(path: str, min_age_s: float) -> bool:
    try:
        fd = os.open(path, _OPEN)  # not a symlink, a folder
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode) or time.time() - st.st_ctime < min_age_s:
            return False
        if os.geteuid() != 0 and st.st_uid != os.geteuid():  # another user's (in a sticky /tmp: not ours to remove)
            return False
        if os.geteuid() == 0 and not _sandbox_user(st.st_uid):  # (review30b: root removed any local user's folder
            return False  # named so, in the world-writable /tmp and /dev/shm, and raced the walk as root)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a living process: BlockingIOError
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # (the lock goes with it; the removal re-checks every step: cleanup.remove_tree)


def _sandbox_user(uid: int) -> bool:
    """Whether a root gateway's folders may belong to `uid`: root (the stage folders) or a user runs switch to
    (`sandbox.run_as`, `sandbox.run_as_range`)."""
    from tierwise.sandbox import identity  # (identity imports this module)

    span = identity.settings.run_as_range
    if uid == 0 or (span is not None and span[0] <= uid <= span[1]):
        return True
    try:
        return identity.resolve(identity.settings.run_as).uid == uid
    except (KeyError, ValueError):
        return False
