"""Who the sandboxed code is outside the sandbox: never root.

bubblewrap's `--uid 65534` is the uid *inside* its user namespace; the namespace maps it back to
the uid of whoever ran bwrap. With the gateway running as root (as in many containers) the code
was root outside: a 0600 root-only file in any bound folder (the interpreter's, a script agent's)
was readable. So when the gateway is root, the child switches to the unprivileged `run_as` user
(default 65534, nobody) between fork and exec of bwrap (or of the weak sandbox's interpreter):
no supplementary groups, then gid, then uid, real, effective and saved alike, which also clears
every capability. bwrap, run by that user, maps the sandbox's uid to it. A gateway that is not
root changes nothing here: its code already runs as the gateway's own unprivileged user.

That user must reach the folders bound in (bwrap resolves them as it). Where a folder above one
cannot be searched by it (the interpreter under /root, mode 0700, with pyenv or uv; a script
folder below a private one), the child, still root, makes a private mount namespace, covers that
folder with an empty root-owned tmpfs and binds each bound folder back at its own path (`Staging`):
only those folders become reachable, in that child only; their files keep their owners and
modes, and the rest of the covered folder is hidden. Where even that is impossible (no
CAP_SYS_ADMIN), tierwise.sandbox.backend finds out when it probes and runs the code as before,
saying so (doctor, log, no `unprivileged` layer).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import fcntl
import functools
import logging
import os
import pwd
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tierwise.sandbox import bwrap, orphans, pidns

log = logging.getLogger("tierwise.sandbox")

DEFAULT_RUN_AS = 65534
# The largest uid or gid a user may have: (uid_t)-1, 4294967295, is the "leave it unchanged" of
# setresuid/setresgid (Python passes it through as -1), so a `run_as` of that number kept root.
MAX_ID = 2**32 - 2
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
# A weak run's host name (session 27): without a UTS namespace `os.uname().nodename` was the host's (bubblewrap's
# runs say `sandbox`); a namespace of its own with that name, where the run gets a mount namespace.
CLONE_NEWUTS, HOST_NAME = 0x04000000, b"sandbox"
PR_SET_DUMPABLE = 4
# The capability bounding set (session 30): a weak run and the compiler of `python_code` switched from root kept the
# whole set (CapBnd 1fffeffffff here; bubblewrap's runs 0): the capabilities an exec may ever grant. no_new_privs
# already keeps an exec from granting any; emptied as bubblewrap's `--cap-drop ALL` does, defence in depth.
PR_CAPBSET_READ, PR_CAPBSET_DROP, LAST_CAP = 23, 24, 63
MS_RDONLY, MS_BIND, MS_REC, MS_PRIVATE, MNT_DETACH = 1, 4096, 16384, 1 << 18, 2
# mount_setattr(2) (Linux 5.12; one number on every architecture): every mount below "/" read-only at once.
SYS_MOUNT_SETATTR, AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = 442, -100, 0x8000, 1


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


@dataclass(frozen=True, slots=True)
class User:
    uid: int
    gid: int


@dataclass(slots=True)
class Settings:
    run_as: int | str = DEFAULT_RUN_AS
    # (first, last): each run at a time gets a uid of its own from these (`UidPool`); None: every
    # run is `run_as`.
    run_as_range: tuple[int, int] | None = None


settings = Settings()


def configure(run_as: int | str = DEFAULT_RUN_AS, run_as_range: str | None = None) -> None:
    """Raises ValueError for root, a user name the system does not know or a malformed range."""
    resolve(run_as)
    span = parse_range(run_as_range) if run_as_range is not None else None
    settings.run_as, settings.run_as_range = run_as, span
    target.cache_clear()
    pool.cache_clear()


def parse_range(text: str) -> tuple[int, int]:
    """`"61184-61439"` -> (61184, 61439): uids with no entry in the password database are not
    required (each run's gid is its uid)."""
    first, sep, last = str(text).partition("-")
    if not (sep and first.strip().isdigit() and last.strip().isdigit()):
        raise ValueError(f"sandbox.run_as_range must be 'FIRST-LAST' (uids), got {text!r}")
    lo, hi = int(first), int(last)
    if not 0 < lo <= hi <= MAX_ID:
        raise ValueError(f"sandbox.run_as_range: uids must be between 1 and {MAX_ID}, first <= last, got {text!r}")
    return lo, hi


# Where the uid locks of every gateway process of this machine are (`serve --workers N`, `tierwise mcp`): a
# root-only folder, one file per uid, locked with flock while a run has that uid.
LOCK_DIR = "/run/tierwise-run-uids" if os.path.isdir("/run") else os.path.join(tempfile.gettempdir(),
                                                                                "tierwise-run-uids")


class UidPool:
    """Distinct uids for the runs in progress (like systemd's DynamicUser): with one uid for every
    run, a run in the weak sandbox read and wrote another run's folder (its tests), read and wrote
    its memory through /proc/<pid>/mem and stopped it with tgkill, and runs shared the per-user
    counters of the kernel; with a uid each, the kernel refuses all of it. A uid comes back after
    its run's processes are gone and is handed out again last (least recently used first).

    Each gateway process has a pool over the same range (`serve --workers N`; `tierwise mcp` beside
    `serve`): a uid is taken with an flock on its file in `lock_dir`, which every process sees and the
    kernel releases when the holder dies. (Each pool handed the range's first uid to its first run:
    two workers' runs were one user again.) `lock_dir` None: this process's runs only."""

    def __init__(self, first: int, last: int, lock_dir: str | None = None) -> None:
        self.size = last - first + 1
        self._free = collections.deque(User(uid, uid) for uid in range(first, last + 1))
        self._dir = lock_dir
        self._held: dict[int, int] = {}  # uid -> the descriptor holding its lock

    def take(self) -> User | None:
        """A uid no run in progress has, in this process or another; None when every one is in use."""
        for _ in range(len(self._free)):
            user = self._free.popleft()
            if self._lock(user.uid):
                return user
            self._free.append(user)  # another process's run has it
        return None

    def _lock(self, uid: int) -> bool:
        if self._dir is None:
            return True
        try:  # (a lock file that cannot be opened: the uid is not taken, the run is `busy` at worst)
            fd = os.open(os.path.join(self._dir, str(uid)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._held[uid] = fd
        return True

    def give_back(self, user: User) -> None:
        fd = self._held.pop(user.uid, None)
        if fd is not None:
            os.close(fd)  # the lock goes with it
        self._free.append(user)


def lock_dir() -> str | None:
    """LOCK_DIR, made root-only; None (with a warning) when it is there but not root's alone."""
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(LOCK_DIR, 0o700)
        st = os.lstat(LOCK_DIR)
        why = None if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o077 else \
            "not a folder of root's alone"
    except OSError as e:
        why = e.strerror or str(e)
    if why is None:
        return LOCK_DIR
    log.warning("sandbox: %s: %s; sandbox.run_as_range keeps runs apart within this process only (with "
                "--workers N, two workers' runs may share a uid)", LOCK_DIR, why)
    return None


@functools.cache
def pool() -> UidPool | None:
    """The pool of run uids, when the gateway is root and a range is configured."""
    if settings.run_as_range is None or os.geteuid() != 0:
        return None
    return UidPool(*settings.run_as_range, lock_dir=lock_dir())


def resolve(run_as: int | str) -> User:
    """A uid or a user name -> (uid, gid): the user's own group, or the same number for a uid that
    has no entry in the password database. Root is refused: the point is not to be root."""
    if isinstance(run_as, str) and run_as.isdigit():
        run_as = int(run_as)
    try:
        entry = pwd.getpwnam(run_as) if isinstance(run_as, str) else pwd.getpwuid(run_as)
        user = User(entry.pw_uid, entry.pw_gid)
    except KeyError:
        if isinstance(run_as, str):
            raise ValueError(f"sandbox.run_as: no user named {run_as!r}") from None
        user = User(run_as, run_as)
    if user.uid == 0 or user.gid == 0:
        raise ValueError("sandbox.run_as must not be root (uid or gid 0)")
    if not (0 < user.uid <= MAX_ID and 0 < user.gid <= MAX_ID):
        raise ValueError(f"sandbox.run_as: uid and gid must be between 1 and {MAX_ID} (4294967295 is "
                         "setresuid's 'unchanged': the code would stay root)")
    return user


@functools.cache
def target() -> User | None:
    """The user the sandboxed code switches to (with a range, the first of it: what the probe
    checks for all of them): None when the gateway is not root (nothing to drop)."""
    if os.geteuid() != 0:
        return None
    if settings.run_as_range is not None:
        return User(settings.run_as_range[0], settings.run_as_range[0])
    return resolve(settings.run_as)


def reachable(path: str, user: User, *, search_only: bool = False) -> bool:
    """Whether `user` (no supplementary groups) may search every folder down to `path`, and read
    `path` (`search_only`: search it, a folder)."""
    path = os.path.realpath(path)
    parts = path.strip("/").split("/") if path != "/" else []
    current = "/"
    try:
        for i, part in enumerate(["", *parts]):
            current = os.path.join(current, part) if part else "/"
            st = os.stat(current)
            last = i == len(parts)
            need = (4 if last and not search_only else 0) | (1 if stat.S_ISDIR(st.st_mode) or not last else 0)
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


# The weak sandbox's stage (`plan(..., stage=PROC_STAGE)`): a tmpfs mounted over the host's /proc for the staging,
# detached before the run's empty /proc goes there. Its covers include the temporary folder, which holds stage_root().
PROC_STAGE = "/proc"


@functools.cache
def stage_root() -> str:
    """An empty root-only folder: each child's mount point for the folders it re-shows (in the
    child's own mount namespace only; here it stays empty). Removed when the gateway exits."""
    folder = tempfile.mkdtemp(prefix="tierwise-stage-")
    orphans.hold(folder)  # for the process's life: killed outright, it is left to another's sweep
    atexit.register(_remove_quietly, folder)
    return folder


def _remove_quietly(folder: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(folder)
    orphans.release(folder)


def _hiding_ancestor(path: str, user: User) -> str | None:
    """The highest folder above `path` that `user` may not search (None: every one is searchable)."""
    current = "/"
    for part in path.strip("/").split("/")[:-1]:
        if not reachable(current, user, search_only=True):
            return current
        current = os.path.join(current, part)
    return None if reachable(current, user, search_only=True) else current


@dataclass(frozen=True, slots=True)
class Staging:
    """What the child does, as root, so the user finds each folder at its own path: every folder
    bound onto `stage_root()/<n>`, a root-owned 0755 tmpfs over each hiding folder (hiding the rest
    of it), the path down to each folder made again in it, and each folder bound back in place. (A
    gateway that is not root does the same in the user namespace of its weak run, for the masks.)"""

    stage: bytes
    sources: tuple[tuple[bytes, bytes, bool], ...]  # (folder or file, its stage path, is a folder)
    covers: tuple[bytes, ...]  # the hiding folders, outermost first
    paths: tuple[tuple[bytes, bool], ...]  # what to make under the covers, parents first (path, folder)
    files: tuple[bytes, ...] = ()  # regular files covered by an empty, unreadable one (the weak sandbox: top_files)
    inside: tuple[bytes, ...] = ()  # folders inside a source shown again, covered after it (the weak sandbox: site-packages)


def plan(sources: Sequence[str], user: User | None, masks: Sequence[str] = (), *,
         stage: str | None = None, files: Sequence[str] = (), inside: Sequence[str] = ()) -> Staging | None:
    """The staging that shows `sources` (real paths) to `user` at their own paths; None: no need.
    A source unreadable in itself (a 0700 folder of root's) is left as it is: only the folders
    above it are what the user could not pass. `masks` (the weak sandbox: the gateway's working
    folder and home) are covered too, whoever the user is, and only the sources inside them shown
    again. `stage`: where the child stages them (default `stage_root()`, in the temporary folder); the weak
    sandbox, which covers the temporary folder too, stages on /proc (PROC_STAGE), hidden afterwards anyway.
    Remembered per set of sources (~170 us of stat calls each time otherwise): a folder's modes changed while
    the gateway runs take a restart. `files`: regular files (not folders: a tmpfs cannot cover them) covered by an
    empty file of mode 0, `inside`: folders in a source covered by an empty tmpfs once it is shown (with `masks` only)."""
    if user is None and not masks:
        return None
    return _plan(tuple(sources), user, tuple(masks), stage, tuple(files) if masks else (), tuple(inside) if masks else ())


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


@functools.lru_cache(maxsize=256)
def _plan(sources: tuple[str, ...], user: User | None, masks: tuple[str, ...] = (),
          stage: str | None = None, files: tuple[str, ...] = (), inside: tuple[str, ...] = ()) -> Staging | None:
    hidden: dict[str, str] = {}
    for src in dict.fromkeys(sources):
        around = [c for c in (_hiding_ancestor(src, user) if user is not None else None,
                              *(m for m in masks if _under(src, m))) if c is not None]
        if around:
            hidden[src] = min(around, key=len)
    if not hidden and not masks:
        return None
    covers = sorted(set(hidden.values()) | set(masks), key=len)
    covers = [c for c in covers if not any(_under(c, o) for o in covers if o != c)]
    root = stage or stage_root()
    made: dict[str, bool] = {}
    staged = []
    for n, src in enumerate(sorted(hidden)):
        folder = os.path.isdir(src)
        staged.append((src.encode(), os.path.join(root, str(n)).encode(), folder))
        outer = next(c for c in covers if _under(src, c))
        parts = src[len(outer):].strip("/").split("/")
        for i in range(1, len(parts) + 1):
            made.setdefault(os.path.join(outer, *parts[:i]), folder or i < len(parts))
    return Staging(root.encode(), tuple(staged), tuple(c.encode() for c in covers),
                   tuple((p.encode(), d) for p, d in made.items()), tuple(f.encode() for f in files),
                   tuple(f.encode() for f in inside))


class _Libc:
    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.unshare = libc.unshare
        self.unshare.argtypes = [ctypes.c_int]
        self.mount = libc.mount
        self.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        self.umount2 = libc.umount2
        self.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.syscall = libc.syscall
        self.sethostname = libc.sethostname
        self.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self.prctl = libc.prctl
        self.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        self.read_only = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
        self.writable = _MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)
        self.attr_size = ctypes.sizeof(_MountAttr)

    def set_attr(self, path: bytes, flags: int, attr: _MountAttr) -> int:
        return int(self.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, ctypes.c_char_p(path), flags, ctypes.byref(attr),
                                self.attr_size))

    def check(self, rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"sandbox user switch: {what}: {os.strerror(err)}")


@functools.cache
def _libc() -> _Libc:
    return _Libc()


@dataclass(frozen=True, slots=True)
class Folder:
    """The weak sandbox's run folder as its child shows it: a tmpfs of `size` bytes owned by the user
    over `path`, holding copies of the run's `files` (name, content), the user's to write, move and
    delete, as bubblewrap's `/work` copies are."""

    path: bytes
    files: tuple[tuple[bytes, bytes], ...]
    options: bytes  # the tmpfs's mount options (size, owner, mode)
    # Whether the run goes in a PID namespace of its own (tierwise.sandbox.pidns): an extra layer, where the kernel
    # allows it (backend.weak_pid_namespace); without, the host stays read-only and the run sees the host's PIDs.
    pid_namespace: bool = True


# Inodes of the weak run's folder: one per page of its size. tmpfs keeps each inode and dentry in kernel memory
# (~1 KB) that its `size` does not count, by default up to half the RAM's pages of them: a weak run making empty
# folders held 850 MB of unreclaimable slab when its 5 s of CPU ran out (more with a longer cpu_s).
INODE_BYTES = 4096
SHM = b"/dev/shm"


def run_folder(path: str, files: Mapping[str, bytes], size: int, user: User, pid_namespace: bool = True) -> Folder:
    return Folder(path.encode(), tuple((n.encode(), data) for n, data in files.items()),
                  f"mode=0700,uid={user.uid},gid={user.gid},size={size},"
                  f"nr_inodes={max(64, size // INODE_BYTES)}".encode(), pid_namespace)


def switcher(user: User | None, staging: Staging | None, folder: Folder | None = None) -> tuple | None:
    """What the child needs to switch (prepared in the parent: the child only makes system calls).
    `folder` (the weak sandbox): the run's folder, the only place of the host left writable. A gateway
    that is not root (`user` None) has no user to switch to; its weak run's folder and read-only host
    are made in a user namespace of the run's own (`own_user`)."""
    if user is None and folder is None:
        return None
    return (_libc(), staging, user, folder, os.getpid(), os.fsencode(bwrap.interpreter()))


def own_user() -> User:
    """The gateway's own user: who a weak run of a gateway that is not root is, inside and outside."""
    return User(os.getuid(), os.getgid())


def switch(prepared: tuple | None) -> None:
    """Between fork and exec, as root, after joining the run's cgroups: the staging (a private
    mount namespace, see `Staging`), (the weak sandbox) the run's folder a bounded tmpfs, /proc hidden and
    every other mount read-only, then become the user: no supplementary groups, gid, uid (real,
    effective and saved: the capabilities go with root). A gateway that is not root (the weak sandbox's
    folder without a user): the same mounts in a user namespace of the run's own, and no switch."""
    if prepared is None:
        return
    libc, staging, user, folder, gateway, python = prepared
    if user is None:  # a gateway that is not root: a user namespace mapping only its own uid and gid
        user = own_user()
        # Its /proc files are root's in a gateway made not dumpable (tierwise.sandbox.weak.shield_gateway), the
        # maps below among them: this copy of the gateway's memory, about to be replaced by exec, is made dumpable.
        libc.check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")
        libc.check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS), "a user namespace")
        for name, line in ((b"setgroups", b"deny"), (b"uid_map", b"%d %d 1" % (user.uid, user.uid)),
                           (b"gid_map", b"%d %d 1" % (user.gid, user.gid))):
            _write_proc(name, line)
        libc.check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
        _drop_bounding_set(libc)  # (CAP_SETPCAP of the new namespace)
        prepared = None  # no switch below: the capabilities it has in that namespace go at exec (a uid not 0)
    elif staging is not None or folder is not None:
        libc.check(libc.unshare(CLONE_NEWNS | (CLONE_NEWUTS if folder is not None else 0)), "a mount namespace")
        libc.check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
    if folder is not None:
        libc.check(libc.sethostname(HOST_NAME, len(HOST_NAME)), "the host name")
    if staging is not None:
        libc.check(libc.mount(b"tmpfs", staging.stage, b"tmpfs", 0, b"mode=0700,size=4k"), "the stage folder")
        for src, dst, is_folder in staging.sources:
            _make(dst, is_folder)
            libc.check(libc.mount(src, dst, None, MS_BIND | MS_REC, None), "staging a folder")
        for cover in staging.covers:
            libc.check(libc.mount(b"tmpfs", cover, b"tmpfs", 0, b"mode=0755,size=64k,nr_inodes=4096"), "a cover")
        for path, is_folder in staging.paths:
            _make(path, is_folder)
        for src, dst, _ in staging.sources:
            libc.check(libc.mount(dst, src, None, MS_BIND | MS_REC, None), "a folder back in place")
        if staging.files:  # (bound from the stage: the mounts stay when the stage is detached)
            empty = staging.stage + b"/empty"
            os.close(os.open(empty, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0))
            for path in staging.files:
                libc.check(libc.mount(empty, path, None, MS_BIND, None), "a file covered")
        for path in staging.inside:
            libc.check(libc.mount(b"tmpfs", path, b"tmpfs", 0, b"mode=0755,size=4k,nr_inodes=16"), "a folder covered")
    if folder is not None:
        # The weak sandbox's code as the run's user could write wherever that user may: /dev/shm
        # (host memory, kept after the run: `_posixshmem` opens there in C, no audit event), /tmp,
        # another run's folder, and its own folder on the host's disk without a bound in total.
        # Here its folder is a tmpfs of `work_mb` holding copies of its files (bound in from the host
        # folder, they were left read-only with the rest of the host) and every other mount is read-only.
        libc.check(libc.mount(b"tmpfs", folder.path, b"tmpfs", 0, folder.options), "the run's folder")
        for name, data in folder.files:
            _write_own(folder.path + b"/" + name, data, user)
        # A /dev/shm of its own, as bubblewrap's runs have (session 37): with /dev covered it had none, and
        # `multiprocessing.Lock()` (sem_open), so Queue and the thread-only pool.ThreadPool, raised FileNotFoundError.
        # bwrap.SHM_MB, mode 1777, in the run's memory cgroup (runner: its limit raised by as much); gone with the run.
        _make(SHM, True)
        libc.check(libc.mount(b"tmpfs", SHM, b"tmpfs", 0, b"mode=1777,size=%d,nr_inodes=%d" % (
            bwrap.SHM_MB << 20, (bwrap.SHM_MB << 20) // INODE_BYTES)), "/dev/shm")
        # No /proc, as in bubblewrap: through it a run read the memory of any process of its uid (another run in
        # progress: a split check's tests, in its heap), and every process's command line.
        if staging is not None and staging.stage == PROC_STAGE.encode():
            libc.check(libc.umount2(staging.stage, MNT_DETACH), "the stage detached")
        libc.check(libc.mount(b"tmpfs", b"/proc", b"tmpfs", MS_RDONLY, b"mode=0555,size=4k,nr_inodes=1"), "/proc hidden")
        libc.check(libc.set_attr(b"/", AT_RECURSIVE, libc.read_only), "the host read-only")
        libc.check(libc.set_attr(folder.path, 0, libc.writable), "the run's folder writable")
        libc.check(libc.set_attr(SHM, 0, libc.writable), "/dev/shm writable")
        os.chdir(folder.path)  # the working folder was entered before the mount: the host's under it
        # (returns in the run alone: PID 2 of a namespace of its own; its keeper and init the run's user, from root)
        if folder.pid_namespace:
            pidns.enter(libc, gateway, python, (user.uid, user.gid) if prepared is not None else None)
    if prepared is None:
        return
    _drop_bounding_set(libc)
    os.setgroups([])
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    if os.getresuid() != (user.uid,) * 3 or os.getresgid() != (user.gid,) * 3:  # never exec as root
        raise OSError(1, f"sandbox user switch: still uid {os.getresuid()}, gid {os.getresgid()}")


def _drop_bounding_set(libc: _Libc) -> None:
    """Every capability out of the bounding set (needs CAP_SETPCAP: where the gateway lacks it, the set stays; numbers
    past the kernel's last capability answer EINVAL). System calls only."""
    for cap in range(LAST_CAP + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def _write_own(path: bytes, data: bytes, user: User) -> None:
    """A new file of the run's user holding `data` (between fork and exec: system calls on prepared bytes)."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchown(fd, user.uid, user.gid)
    finally:
        os.close(fd)


def _write_proc(name: bytes, line: bytes) -> None:
    fd = os.open(b"/proc/self/" + name, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _make(path: bytes, folder: bool) -> None:
    if folder:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o755)
    else:  # a file (the interpreter) is bound onto a file
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))
