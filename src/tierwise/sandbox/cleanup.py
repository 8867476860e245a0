"""Remove a run's folder whatever the code left in it: iterative (any depth, no recursion, one open
folder at a time), folders made unreadable or read-only made usable first, symlinks never
followed. Used by the weak sandbox only: the bubblewrap sandbox's folder is a tmpfs that
vanishes with it.

Another process of the run's user (a concurrent run, when every run is one `run_as` user) may
change the tree while it is removed, as root for a root gateway: a subfolder swapped for a symlink
is never followed (a chmod through it made any folder of the host 0700), and each step back up
checks it is in the folder it came from (a subfolder moved out of the tree led '..' elsewhere, and
that folder was emptied). A tree that changed so is left to `rm -rf`, which checks the same, and so is a
tree of more than `ENTRIES` entries (session 30): where Landlock alone bounds a weak run, its folder is on the host's
/dev/shm and a run filled it until its memory cgroup killed it (381,365 empty files), then this loop removed them in a
worker thread of the gateway, with the GIL: 8.3 s of a thread and the run's slot, 1.96 s of the gateway's CPU and its
event loop lagging up to 61-93 ms, for every such run. `rm -rf` is a process of its own: the gateway waits, idle."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import subprocess

log = logging.getLogger("tierwise.sandbox")

# Entries removed here at most (a run's folder holds a few); past them the rest is rm's work.
ENTRIES = 10_000

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: str) -> bool:
    """Remove `path` and everything under it; True when it is gone. Never raises."""
    try:
        _remove(path)
    except OSError as e:
        log.warning("sandbox clean-up of %s: %s; trying rm -rf", path, e)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["rm", "-rf", "--one-file-system", "--", path], capture_output=True, timeout=300)
    return not os.path.lexists(path)


def _remove(path: str) -> None:
    if not os.path.lexists(path):
        return
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        os.unlink(path)
        return
    _chmod_here(path, None)
    fd = os.open(path, _OPEN_DIR)
    left = [ENTRIES]  # (removals left: _empty_or_first_subfolder counts them down)
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
                fd, names = sub, [*names, child]
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
    `left[0]` entries (counted down, folders entered included) have gone: the rest is left to rm."""
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
        raise OSError(f"more than {ENTRIES} entries: left to a process of its own")
