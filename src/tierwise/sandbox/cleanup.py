"""Remove a run's folder whatever the code left in it: iterative (any depth, no recursion, one open
folder at a time), folders made unreadable or read-only made usable first, symlinks never
followed. Used by the weak sandbox only: the bubblewrap sandbox's folder is a tmpfs that
vanishes with it."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import subprocess

log = logging.getLogger("tierwise.sandbox")

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
    os.chmod(path, 0o700)
    fd = os.open(path, _OPEN_DIR)
    names: list[str] = []  # the folders we are in, below `path`
    try:
        while True:
            child = _empty_or_first_subfolder(fd)
            if child is not None:
                os.chmod(child, 0o700, dir_fd=fd)  # a folder (checked): reading and unlinking need rwx
                sub = os.open(child, _OPEN_DIR, dir_fd=fd)
                os.close(fd)
                fd, names = sub, [*names, child]
                continue
            if not names:
                break
            # Up one level, then remove the folder just emptied. Nothing runs in the tree any more
            # (the sandbox is dead), so ".." is the folder we came from.
            parent = os.open("..", _OPEN_DIR, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def _empty_or_first_subfolder(fd: int) -> str | None:
    """Unlink every non-folder in the folder `fd`; the name of one subfolder, or None when empty."""
    while True:
        removed = False
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    return entry.name
                os.unlink(entry.name, dir_fd=fd)
                removed = True
        if not removed:  # (a listing changed while read may miss names: list again until empty)
            return None
