"""Remove a run's folder whatever the code left in it: iterative (any depth, no recursion, one open
folder at a time), folders made unreadable or read-only made usable first, symlinks never
followed. Used by the weak sandbox only: the bubblewrap sandbox's folder is a tmpfs that
vanishes with it.

Another process of the run's user (a concurrent run, when every run is one `run_as` user) may
change the tree while it is removed, as root for a root gateway: a subfolder swapped for a symlink
is never followed (a chmod through it made any folder of the host 0700), and each step back up
checks it is in the folder it came from (a subfolder moved out of the tree led '..' elsewhere, and
that folder was emptied). A tree that changed so is left to `rm -rf`, which checks the same.

A tree of more than `ENTRIES` entries is finished by this same walk in a process of its own (this file run as a
script: the standard library only), which the gateway awaits idle (session 30): where Landlock alone bounds a weak run,
its folder is on the host's /dev/shm, and a run that filled it until its memory cgroup killed it left 381,365 empty
files, which this walk removed in a worker thread of the gateway, with the GIL: ~2 s of the gateway's CPU for each such
run. Not `rm -rf`: as a user that is not root it cannot empty a folder the run made write-only (mode 0300). That
process is the folder's owner (`_process_of_owner`), and what it leaves is the next sweep's (review30b)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Callable

log = logging.getLogger("tierwise.sandbox")

# Entries removed in the gateway's process at most (a run's folder holds a few); past them, a process of its own.
ENTRIES = 10_000

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _TooMany(OSError):
    """More than ENTRIES entries: the rest is a process's of its own."""


def remove_tree(path: str, bounded: bool = True) -> bool:
    """Remove `path` and everything under it; True when it is gone. Never raises. `bounded`: past ENTRIES entries the
    rest is removed by this walk in a process of its own."""
    try:
        _remove(path, ENTRIES if bounded else sys.maxsize)
    except _TooMany as e:
        log.warning("sandbox clean-up of %s: %s", path, e)
        with contextlib.suppress(OSError, ValueError, subprocess.SubprocessError):  # (never raises)
            python, switch = _process_of_owner(path)
            subprocess.run([python, "-I", "-S", "-c", _source(), path], capture_output=True, timeout=600, env={},
                           cwd="/", preexec_fn=functools.partial(_in_the_background, switch))
        # What the process left (it could not start, was killed, or the owner may not remove it) stays for the next
        # sweep (tierwise.sandbox.orphans), ENTRIES more each time: before review30b the gateway walked the rest here
        # with no bound, the very cost the process is there to take off it.
    except OSError as e:
        log.warning("sandbox clean-up of %s: %s; trying rm -rf", path, e)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            # (PATH alone: exec'd, rm is dumpable, and the gateway's keys would be in its /proc/<pid>/environ for as long
            # as it runs, review38c)
            subprocess.run(["rm", "-rf", "--one-file-system", "--", path], capture_output=True, timeout=300,
                           env={"PATH": os.environ.get("PATH", os.defpath)})
    return not os.path.lexists(path)


def _process_of_owner(path: str) -> tuple[str, Callable[[], None] | None]:
    """The interpreter and the switch of user for the process that removes `path`: the folder's owner where the
    gateway is root and the folder is not root's (a run's folder is its run's user's), as a weak run switches
    (tierwise.sandbox.identity: the bounding set emptied, groups, gid, uid; the interpreter's installation shown where
    that user cannot reach it). Before review30b the process was root with every capability, walking a tree the run
    or, through the sweep of /dev/shm (tierwise.sandbox.orphans), any local user had made."""
    # (the gateway's side only: the process itself runs the standard library alone)
    from tierwise.sandbox import bwrap, identity, weak

    python = bwrap.interpreter()
    try:
        st = os.lstat(path)
    except OSError:
        return python, None
    if os.geteuid() != 0 or st.st_uid == 0:
        return python, None
    user = identity.User(st.st_uid, st.st_gid)
    prepared = identity.switcher(user, identity.plan([weak.prefix()], user))
    return python, functools.partial(identity.switch, prepared)


def _in_the_background(switch: Callable[[], None] | None) -> None:
    """Between fork and exec of that process: the lowest CPU priority, then the switch of user. It ran at the gateway's
    own priority (session 31: a run that filled its folder had its process compete with the gateway for a core, 7-9 s
    of the kernel's unlinking each time); the clean-up is never urgent, what it leaves is the next sweep's."""
    with contextlib.suppress(OSError):  # (a priority it cannot lower is no reason to leave the folder)
        os.setpriority(os.PRIO_PROCESS, 0, 19)
    if switch is not None:
        switch()


@functools.cache
def _source() -> str:
    """This file's text, run with `-c`: the process needs no path to it that its user may read."""
    with open(os.path.abspath(__file__), encoding="utf-8") as fh:
        return fh.read()


def _remove(path: str, entries: int) -> None:
    if not os.path.lexists(path):
        return
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        os.unlink(path)
        return
    _chmod_here(path, None)
    fd = os.open(path, _OPEN_DIR)
    left = [entries]  # (removals left: _empty_or_first_subfolder counts them down)
    names: list[str] = []  # the folders we are in, below `path`
    above: list[tuple[int, int]] = []  # (device, inode) of the folder each of them is in
    try:
        while True:
            child = _empty_or_first_subfolder(fd, left)
            if child is not None:
                _chmod_here(child, fd)  # reading and unlinking need rwx
                sub = os.open(child, _OPEN_DIR, dir_fd=fd)
                above.append(_identity(fd))
                os.close(fd)
                fd = sub
                names.append(child)
                continue
            if not names:
                break
            # Up one level, then remove the folder just emptied: only if ".." is the folder we came
            # from (the folder we are in may have been moved out of the tree meanwhile).
            parent = os.open("..", _OPEN_DIR, dir_fd=fd)
            os.close(fd)
            fd = parent
            if _identity(fd) != above.pop():
                raise OSError(f"{path}: a folder was moved out of the tree while it was removed")
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _chmod_here(name: str, dir_fd: int | None) -> None:
    """chmod 0700 of a folder that is not a symlink: a symlink (swapped in since the listing) raises."""
    try:
        os.chmod(name, 0o700, dir_fd=dir_fd, follow_symlinks=False)
    except (ValueError, NotImplementedError):  # CPython's answer to fchmodat's EOPNOTSUPP on a symlink (Linux)
        # ValueError, or NotImplementedError where the platform lacks AT_SYMLINK_NOFOLLOW: either way not a folder
        raise OSError(f"{name}: a symlink where a folder was") from None


def _empty_or_first_subfolder(fd: int, left: list[int]) -> str | None:
    """Unlink every non-folder in the folder `fd`; the name of one subfolder, or None when empty. Raises OSError once
    `left[0]` entries (counted down, folders entered included) have gone."""
    _spend(left)
    while True:
        removed = False
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    return entry.name
                os.unlink(entry.name, dir_fd=fd)
                removed = True
                _spend(left)
        if not removed:  # (a listing changed while read may miss names: list again until empty)
            return None


def _spend(left: list[int]) -> None:
    left[0] -= 1
    if left[0] < 0:
        raise _TooMany(f"more than {ENTRIES} entries: the rest is left to a process of its own")


if __name__ == "__main__":  # the rest of a big folder (remove_tree): the same walk, unbounded
    logging.basicConfig(level=logging.WARNING)
    sys.exit(0 if remove_tree(sys.argv[1], bounded=False) else 1)
