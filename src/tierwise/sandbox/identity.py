"""Who the sandboxed code is outside the sandbox: never root.

bubblewrap's `--uid 65534` is the uid *inside* its user namespace; the namespace maps it back to
the uid of whoever ran bwrap. With the gateway running as root (as in many containers) the code
was root outside: a 0600 root-only file in any bound folder (the interpreter's, a script agent's)
was readable. So when the gateway is root, the child switches to the unprivileged `run_as` user
(default 65534, nobody) between fork and exec of bwrap (or of the weak sandbox's interpreter):
no supplementary groups, then gid, then uid, real, effective and saved alike, which also clears
every capability. bwrap, run by that user, maps the sandbox's uid to it. A gateway that is not
root changes nothing here: its code already runs as the gateway's own unprivileged user.

That user must reach the folders bound in (bwrap resolves them as it). A folder it cannot reach
(the interpreter under /root, mode 0700, with pyenv or uv; a script folder below a private one)
is *staged*: the child, still root, makes a private mount namespace and binds the folder onto a
reachable empty folder of ours (`stage_root()/<n>`), and bwrap binds it from there to its usual
path. Only that folder becomes reachable, in that child only; the files in it keep their owners
and modes. Where even that is impossible (no CAP_SYS_ADMIN), tierwise.sandbox.backend finds out
when it probes and runs the code as before, saying so (doctor, log, no `unprivileged` layer).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import pwd
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_RUN_AS = 65534
CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18


@dataclass(frozen=True, slots=True)
class User:
    uid: int
    gid: int


@dataclass(slots=True)
class Settings:
    run_as: int | str = DEFAULT_RUN_AS


settings = Settings()


def configure(run_as: int | str = DEFAULT_RUN_AS) -> None:
    settings.run_as = run_as
    target.cache_clear()


def resolve(run_as: int | str) -> User:
    """A uid or a user name -> (uid, gid): the user's own group, or the same number for a uid that
    has no entry in the password database. Root is refused: the point is not to be root."""
    try:
        entry = pwd.getpwnam(run_as) if isinstance(run_as, str) else pwd.getpwuid(run_as)
        user = User(entry.pw_uid, entry.pw_gid)
    except KeyError:
        if isinstance(run_as, str):
            raise ValueError(f"sandbox.run_as: no user named {run_as!r}") from None
        user = User(run_as, run_as)
    if user.uid == 0 or user.gid == 0:
        raise ValueError("sandbox.run_as must not be root (uid or gid 0)")
    return user


@functools.cache
def target() -> User | None:
    """The user the sandboxed code switches to: None when the gateway is not root (nothing to drop)."""
    if os.geteuid() != 0:
        return None
    return resolve(settings.run_as)


def reachable(path: str, user: User) -> bool:
    """Whether `user` (no supplementary groups) may search every folder down to `path`, and read `path`."""
    path = os.path.realpath(path)
    parts = path.strip("/").split("/") if path != "/" else []
    current = "/"
    try:
        for i, part in enumerate(["", *parts]):
            current = os.path.join(current, part) if part else "/"
            st = os.stat(current)
            last = i == len(parts)
            need = (4 if last else 0) | (1 if stat.S_ISDIR(st.st_mode) or not last else 0)
            if st.st_uid == user.uid:
                bits = (st.st_mode >> 6) & 7
            elif st.st_gid == user.gid:
                bits = (st.st_mode >> 3) & 7
            else:
                bits = st.st_mode & 7
            if bits & need != need:
                return False
    except OSError:
        return False
    return True


@functools.cache
def stage_root() -> str:
    """An empty folder any user may search, the mount point of each child's staged folders (in the
    child's own mount namespace only; here it stays empty). Removed when the gateway exits."""
    folder = tempfile.mkdtemp(prefix="tierwise-stage-")
    os.chmod(folder, 0o755)
    atexit.register(_remove_quietly, folder)
    return folder


def _remove_quietly(folder: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(folder)


def plan(sources: Sequence[str], user: User | None) -> dict[str, str]:
    """{folder or file: where the child shows it} for each of `sources` the user cannot reach."""
    if user is None:
        return {}
    hidden = [s for s in dict.fromkeys(sources) if not reachable(s, user)]
    if not hidden:
        return {}
    root = stage_root()
    return {src: os.path.join(root, str(n)) for n, src in enumerate(hidden)}


def staged_path(path: str, staged: dict[str, str]) -> str:
    """`path` as the child sees it: inside a staged folder, moved to where that folder is shown."""
    for src, dst in staged.items():
        if path == src or path.startswith(src.rstrip("/") + "/"):
            return dst + path[len(src):]
    return path


class _Libc:
    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.unshare = libc.unshare
        self.unshare.argtypes = [ctypes.c_int]
        self.mount = libc.mount
        self.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

    def check(self, rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"sandbox user switch: {what}: {os.strerror(err)}")


@functools.cache
def _libc() -> _Libc:
    return _Libc()


def switcher(user: User | None, staged: dict[str, str]) -> tuple | None:
    """What the child needs to switch (prepared in the parent: the child only makes system calls)."""
    if user is None:
        return None
    root = stage_root().encode() if staged else b""
    binds = [(src.encode(), dst.encode(), os.path.isdir(src)) for src, dst in staged.items()]
    return (_libc() if staged else None, root, binds, user)


def switch(prepared: tuple | None) -> None:
    """Between fork and exec, as root, after joining the run's cgroups: stage the folders the user
    cannot reach (a private mount namespace; a tmpfs on the stage folder, one bind each), then
    become the user: no supplementary groups, gid, uid (real, effective, saved; capabilities go)."""
    if prepared is None:
        return
    libc, root, binds, user = prepared
    if binds:
        libc.check(libc.unshare(CLONE_NEWNS), "a mount namespace")
        libc.check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
        libc.check(libc.mount(b"tmpfs", root, b"tmpfs", 0, b"mode=0755,size=4k"), "the stage folder")
        for src, dst, folder in binds:
            if folder:
                os.mkdir(dst, 0o755)
            else:  # a file (the interpreter) is bound onto a file
                os.close(os.open(dst, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            libc.check(libc.mount(src, dst, None, MS_BIND | MS_REC, None), f"staging {src.decode()}")
    os.setgroups([])
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
