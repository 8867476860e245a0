"""Which processes that wrote to a ledger file's `budget_spend` table still run (`spend_file.py`), told by the kernel:
each gateway process holds an exclusive `flock` on a file of its own, `<ledger>.spend/<member>.lock`, for its life.
The kernel drops the lock when the process ends, however it ends (SIGKILL included), so a lock another process can
take is a dead member's. A timer or a heartbeat column cannot tell a process paused for a while (SIGSTOP, a suspended
VM) from a dead one; a lock can. The file `<ledger>.spend/offer.lock` serialises a start's offer of the file to the
store (read, RESTORE, relabel) with the folding of dead members' rows, which would otherwise race it.

One host: the processes sharing a ledger file (`tierwise serve --workers N`, restarts) share its directory, named
from the file's real path: a gateway reaching the ledger through a symlink kept its locks in another folder before
session 34's review (review34b), and every other process read it as dead and folded its live rows (counted twice at
the next restore). A process whose lock file was deleted under it (a tmp cleaner, an operator) takes a new one at its
next save: before, it was dead to every later fold while it ran.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator

OFFER_WAIT = 5.0  # seconds a start waits for another process's offer or fold at most
_MEMBER = re.compile(r"[0-9a-f]{32}")  # a member id (uuid4 hex): any other name in the table is nobody's lock


class Members:
    def __init__(self, ledger_path: str) -> None:
        self.dir = os.path.realpath(ledger_path) + ".spend"
        self._fd: int | None = None

    def _open(self, name: str) -> int:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        return os.open(os.path.join(self.dir, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)

    def hold(self, member: str) -> None:
        """This process is `member` until it ends (blocking; before its first row is written)."""
        path = os.path.join(self.dir, member + ".lock")
        if self._fd is not None:
            try:  # (still the file a fold would try: else it would read this process as dead)
                st, own = os.stat(path, follow_symlinks=False), os.fstat(self._fd)
                if (st.st_ino, st.st_dev) == (own.st_ino, own.st_dev):
                    return
            except FileNotFoundError:
                pass
            self.release()
        while True:
            fd = self._open(member + ".lock")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:  # (a folding process may have unlinked the file between the open and the lock: lock a new one)
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    self._fd = fd
                    return
            except FileNotFoundError:
                pass
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def dead(self, members: set[str], own: str) -> Iterator[set[str]]:
        """The members of `members` no process holds (not `own`); their locks are held meanwhile and their files
        removed at the end (after their rows were folded)."""
        out: dict[str, int] = {}
        try:
            for m in members:
                if m == own:
                    continue
                if not _MEMBER.fullmatch(m):  # (a fold's rows, or a name written from outside)
                    out[m] = -1
                    continue
                try:
                    fd = os.open(os.path.join(self.dir, m + ".lock"), os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
                except FileNotFoundError:  # (written by a gateway before session 34: it holds no lock)
                    out[m] = -1
                    continue
                except OSError:  # (a symlink or another kind of file planted there: nobody's lock; its rows stay)
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                out[m] = fd
            yield set(out)
            for m, fd in out.items():
                if fd >= 0:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.dir, m + ".lock"))
        finally:
            for fd in out.values():
                if fd >= 0:
                    os.close(fd)

    def lock_offer(self, wait: float = OFFER_WAIT) -> int | None:
        """Take the file's offer lock within `wait` seconds, else None (blocking: call it in a thread); `unlock`
        gives it back. Bounded: a process stopped while it holds the lock (SIGSTOP, a debugger) must not hang every
        other process's first admission, which waits for this offer."""
        fd = self._open("offer.lock")
        end = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= end:
                    os.close(fd)
                    return None
                time.sleep(0.05)

    @staticmethod
    def unlock(fd: int) -> None:
        os.close(fd)
