"""The weak sandbox, for machines without bubblewrap where the operator said `allow_weak`: a
fresh `python -I -S` in its own session with an empty environment, rlimits, the audit hook and,
where libseccomp is installed, the strong sandbox's own seccomp filter (loaded between fork and
exec, with no_new_privs: no sockets, no child process, no device node or FIFO, nothing aimed at
another process's PID), in a private 0700 folder removed afterwards, and the run's cgroups where the
gateway can make them. Where the gateway can make a mount namespace (root; or a user namespace, for a
gateway that is not root) the folder is a bounded tmpfs, /proc is hidden and the rest of the host is
read-only with only the system's folders in sight (tierwise.sandbox.identity, `masks`); where the kernel has
Landlock the run opens nothing else of the host whatever its mounts (tierwise.sandbox.landlock). Its `layers`
say what it has ("rlimits", "seccomp", "audit", "readonly_host", "landlock", "cgroup_*")."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from tierwise.sandbox import bwrap, cgroup, identity, landlock, orphans, pidns, seccomp_filter
from tierwise.sandbox.audit_boot import WEAK_BOOT
from tierwise.sandbox.cleanup import remove_tree

log = logging.getLogger("tierwise.sandbox")

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def filter_loader(threads: bool, host_writable: bool = False, host_in_sight: bool = False,
                  host_pids: bool = True) -> Callable[[], None] | None:
    """What loads the seccomp filter into the calling process (between fork and exec: the process's
    own PID written into the filter's copy, then two prctl calls on memory prepared here, no
    allocation); None where libseccomp is missing. `host_in_sight`: no mount namespace hides the host (then Landlock
    bounds the run, and where its ABI does not handle truncation the filter refuses it by path). `host_pids`: no PID
    namespace of its own (tierwise.sandbox.pidns): `getppid` answers 0, not the gateway's PID (session 37)."""
    return _filter_loader(threads, host_writable, host_in_sight, host_in_sight and landlock.abi() < 3, host_pids)


@functools.cache
def _filter_loader(threads: bool, host_writable: bool, host_in_sight: bool,
                   no_truncate: bool, host_pids: bool) -> Callable[[], None] | None:
    try:
        program = seccomp_filter.filter_bpf(threads, own_pid=True, no_path_metadata=host_writable,
                                            host_in_sight=host_in_sight, no_truncate_by_path=no_truncate,
                                            hide_parent=host_pids)
        offsets = seccomp_filter.own_pid_offsets(program)
        libc = ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError, RuntimeError, ValueError) as e:
        log.warning("sandbox: the weak sandbox runs without its seccomp filter (libseccomp: %s)", e)
        return None
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    code = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(code))
    where, start = ctypes.addressof(prog), ctypes.addressof(code)

    def load() -> None:
        keep = (code, prog)  # noqa: F841 (the filter's memory lives as long as this function)
        pid = os.getpid().to_bytes(4, "little")  # the child's copy of the memory: only its own filter
        for at in offsets:
            ctypes.memmove(start + at, pid, 4)
        if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, where, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"the seccomp filter cannot be loaded: {os.strerror(err)}")

    return load


TMPFS_MAGIC = 0x01021994
SHARED_MEMORY = "/dev/shm"


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 112)]


@functools.cache
def memory_folder_root() -> str | None:
    """Where a weak run's folder goes when no mount namespace gives it a tmpfs of its own but its memory cgroup is
    there: the host's shared-memory tmpfs, whose pages are charged to the memory cgroup of the process that writes
    them, so the run's files count in its `memory.max` (memory + folder + kernel). On the host's disk (Landlock alone:
    a root gateway without CAP_SYS_ADMIN, a container's default) a run filled 1 GB in 24 ms with fallocate, 16 MB
    a file (RLIMIT_FSIZE bounds a file, not their sum): the disk in seconds (session 26). None: not a writable tmpfs."""
    buf = _StatFs()
    try:
        rc = ctypes.CDLL(None, use_errno=True).statfs(SHARED_MEMORY.encode(), ctypes.byref(buf))
    except (AttributeError, OSError):
        return None
    if rc != 0 or buf.f_type != TMPFS_MAGIC or not os.access(SHARED_MEMORY, os.W_OK | os.X_OK):
        return None
    return SHARED_MEMORY


SMALL_SHARE = 8  # a shared-memory tmpfs of at most 1/8 of the RAM bounds the runs' folders without a memory cgroup


def folder_root() -> str | None:
    """Where a weak run's folder goes when no mount namespace gives it a tmpfs of its own (Landlock alone): the
    shared-memory tmpfs, either charged to the run's memory cgroup or, where runs get none, small enough that filling
    it is bounded (Docker's /dev/shm: 64 MB; runs share it). None: nowhere bounds the sum of its files. The host's
    disk does not (RLIMIT_FSIZE bounds a file): with no memory cgroup a run wrote 768 MB there in 48 files, and
    `fallocate` goes at ~40 GB/s at no CPU (session 27): refused instead (backend.weak_problem)."""
    root = memory_folder_root()
    if root is None or cgroup.per_run_memory():
        return root
    try:
        st = os.statvfs(root)
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return None
    return root if st.f_blocks * st.f_frsize <= ram // SMALL_SHARE else None


def make_folder(files: dict[str, bytes], user: identity.User | None = None, root: str | None = None) -> str:
    """The run's 0700 folder with its files (in `root`, default the temporary folder), owned by the sandbox user
    when the code runs as one."""
    folder = tempfile.mkdtemp(prefix="tierwise-sandbox-", dir=root)
    orphans.hold(folder)  # until removed: a gateway killed outright leaves it to the next one's sweep
    for name, data in files.items():
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(data)
    if user is not None:
        for name in files:
            os.chown(os.path.join(folder, name), user.uid, user.gid, follow_symlinks=False)
        os.chown(folder, user.uid, user.gid)
    return folder


@functools.cache
def _prctl() -> Any:
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (AttributeError, OSError):  # not Linux: no parent-death signal
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def dying_with(parent: int, confine: Callable[[], None] | None,
               lock: landlock.Rules | None = None) -> Callable[[], None]:
    """What the run's child does between fork and exec after its switch of user (which clears the setting):
    die with the gateway process `parent` (SIGKILL), then `confine`. No PID namespace or cgroup takes a weak
    run with a gateway that was killed outright: it ran on, unbounded by the wall clock its dead supervisor
    kept, as the uid the kernel's lock then let another process hand to a new run. `lock`: its Landlock rules."""
    prctl = _prctl()

    def load() -> None:
        if prctl is not None and prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"the parent-death signal cannot be set: {os.strerror(err)}")
        # (the gateway died before the setting; in a PID namespace of its own the run's parent is its init, which
        # dies with the gateway and takes the namespace with it: tierwise.sandbox.pidns)
        if prctl is not None and os.getppid() != parent and not pidns.inside():
            os._exit(1)
        if lock is not None:  # what it may open of the host (tierwise.sandbox.landlock), before the seccomp filter
            landlock.restrict(lock)
        if confine is not None:
            confine()

    return load


def shield_gateway(allow_weak: bool, host_scripts: bool = False) -> bool:
    """Where the weak sandbox may run code as this gateway's own user (a gateway that is not root), or trusted
    ensemble scripts may (`host_scripts`: `ensembles.trusted` lists files), make this process not dumpable
    (`not_dumpable`). (A worker made itself so before its first script, but `serve --workers N`'s supervisor and
    the other workers stayed readable to that script, review38c.) A weak run, OS layer alone, read the keys in /proc/<gateway>/environ,
    wrote the gateway's heap through /proc/<gateway>/mem and opened its descriptors by /proc/<gateway>/fd. The
    flag passes to forked processes (`serve --workers N`), not through exec (the run's own interpreter). True
    when set."""
    if not (allow_weak or host_scripts) or os.geteuid() == 0:
        return False
    return not_dumpable()


def not_dumpable() -> bool:
    """This process not dumpable: its /proc files (environ: the provider keys; mem: its memory, writable; fd, cwd,
    root) become root's, the kernel refuses every ptrace-style access by another process of the user, and a crash
    leaves no core file. Also before a trusted ensemble script runs on the host as this user (ensembles/scripts.py:
    it read the keys in /proc/<gateway>/environ, session 38). True when set."""
    prctl = _prctl()
    if prctl is None:
        return False
    from tierwise.sandbox.backend import no_memory_in_dumps  # (backend imports this module)

    no_memory_in_dumps()  # while it still may: its runs inherit the filter (not dumpable, they may not write it)
    if prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("sandbox: the gateway could not make itself non-dumpable (%s): processes of its user may read "
                    "its environment", os.strerror(ctypes.get_errno()))
        return False
    return True


# What a weak run whose host is read-only still sees of it, besides its folder, the interpreter and the folders bound
# in: what bubblewrap's runs see (bwrap.SYSTEM_PATHS: the system's libraries), the programs beside them, and five
# harmless devices. Every other folder at the top of the host is covered: a run, OS layer alone, listed /tmp (other
# programs' files), /etc, /run, /var/log, /home, /opt and /work, read world-readable files in them, opened
# /dev/ptmx (pseudo-terminals: kernel.pty.max, 4,096 for the machine) and, run by a gateway that is not root, would
# open its user's own terminals in /dev/pts.
SHOWN_AT_THE_TOP = frozenset({"usr", "lib", "lib64", "lib32", "libx32", "bin", "sbin", "nix", "proc"})
COVERED_IN_USR = ("/usr/local", "/usr/src")  # an application's folders (bwrap shows /usr/local/lib only)
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def host_covers() -> list[str]:
    """The host's folders a weak run does not see (covered by an empty tmpfs; what it needs inside shown again)."""
    try:
        top = [os.path.join("/", name) for name in os.listdir("/") if name not in SHOWN_AT_THE_TOP]
    except OSError:
        top = []
    return sorted(p for p in (*top, *COVERED_IN_USR) if os.path.isdir(p) and not os.path.islink(p))


def top_files() -> tuple[str, ...]:
    """The regular files at the top of the host (`/.dockerenv`, `/container_info.json`, what an installer left there):
    a tmpfs covers only folders, and a weak run without Landlock read them (session 26). Covered by an empty file of
    mode 0 (tierwise.sandbox.identity, `Staging.files`)."""
    try:
        names = os.listdir("/")
    except OSError:
        return ()
    return tuple(sorted(p for p in (os.path.join("/", n) for n in names) if os.path.isfile(p) and not os.path.islink(p)))


def private_inside() -> tuple[str, ...]:
    """Folders inside the interpreter's installation a weak run does not see, as bubblewrap's (bwrap.layout, `masks`):
    the installed packages (`site-packages`; the run's interpreter is `-I -S`). A weak run listed and read them."""
    packages = os.path.join(os.path.dirname(os.__file__), "site-packages")
    own = (os.path.realpath(packages),) if os.path.isdir(packages) and not os.path.islink(packages) else ()
    return tuple(sorted({*own, *bwrap.installed_packages()}))  # (and the system's Pythons': bwrap.PACKAGE_FOLDERS)


def masks(keep: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The host's folders to hide from a weak run whose host is read-only, as bubblewrap hides them (`host_covers`:
    every folder at the top but the system's; and the gateway's working folder and home, wherever they are: a run,
    OS layer alone, read a world-readable `.env` of the folder the gateway was started in). (masks, shown): the
    folders to cover, and those of `keep` (the run's folder, the interpreter, a folder bound in: the run needs them)
    or of the system's libraries and DEVICES inside one of them, shown again in place (tierwise.sandbox.identity.plan,
    staged on /proc: the temporary folder, which holds the default stage, is covered). Before, a folder holding one of
    `keep` stayed whole: a script agent's folder below the gateway's left its `.env` readable, and an interpreter
    installed in the home (pyenv, uv) the whole home. Not "/" or a folder inside one of `keep`; not a working folder
    that is gone (a release folder replaced under the gateway: os.getcwd() fails)."""
    keep = [os.path.realpath(k) for k in keep]
    places = {os.path.realpath(os.path.expanduser("~")), *host_covers()}
    with contextlib.suppress(OSError):
        places.add(os.path.realpath(os.getcwd()))
    found = sorted(p for p in places if p != "/" and os.path.isdir(p) and not any(k == p or _holds(k, p) for k in keep))
    needed = [*keep, *(p for p in (*bwrap.SYSTEM_PATHS, *DEVICES) if os.path.exists(p) and not os.path.islink(p))]
    shown = tuple(sorted({k for k in needed if any(_holds(m, k) and k != m for m in found)}))
    return tuple(found), shown


def _holds(folder: str, path: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def landlock_rules(folder: str, python: str, ro_binds: list[str], shm: bool = False) -> landlock.Rules | None:
    """The run's Landlock rules: the system's libraries, the interpreter's library folder (its standard library) and
    file, the folders bound in read and executed, but for what bubblewrap hides in them (`hidden`); its folder its own
    (None: no Landlock in this kernel). As bubblewrap's binds (bwrap.layout): not the whole installation, whose `bin`
    (69 console scripts here), `share` and `include` a weak run listed and read (session 29), and which for Docker's
    Python is /usr/local whole (`etc`, `src`: an application and its data). `shm`: /dev/shm is a tmpfs of the run's
    own (a read-only host: tierwise.sandbox.identity.switch), never the host's, where other runs' folders are."""
    return landlock.rules([*bwrap.SYSTEM_PATHS, library(), python], folder, hidden(), ro_binds,
                          (SHARED_MEMORY,) if shm else ())


def library() -> str:
    """The interpreter's library folder (<prefix>/lib: the standard library, and libpythonX.Y.so for shared builds)."""
    return os.path.realpath(os.path.dirname(os.path.dirname(os.__file__)))


def hidden() -> tuple[str, ...]:
    """What a run does not read inside the system's folders and the interpreter's installation, as bubblewrap's
    (bwrap.layout, `masks`): the installed packages, the gateway's working folder and home where one is inside."""
    places = {*private_inside(), os.path.realpath(os.path.expanduser("~"))}
    with contextlib.suppress(OSError):
        places.add(os.path.realpath(os.getcwd()))
    return tuple(sorted(p for p in places if p != "/"))


def folder_bytes(files: dict[str, bytes]) -> int:
    """What the run's files take of its tmpfs folder (whole pages)."""
    return sum(-(-len(data) // 4096) * 4096 for data in files.values())


def prefix() -> str:
    """The interpreter's installation (the compiler's and the clean-up's user are shown it where they cannot reach it)."""
    return os.path.realpath(sys.base_prefix)


def installation() -> list[str]:
    """What a weak run is shown of the interpreter's installation, as bubblewrap binds it: its library folder and the
    interpreter's file. The installation was shown whole (`prefix`) where the host is covered: with no Landlock a run
    read its `bin` (console scripts), `include` and `share`, for conda `pkgs` (a copy of every installed package) and
    `envs` (every other environment's packages) (review30b)."""
    return [library(), bwrap.interpreter()]


def argv(folder: str, entry: str, args: list[str], ro_binds: list[str], python: bool, audit_hook: bool) -> list[str]:
    python_path = bwrap.interpreter()
    if not python:
        return [entry, *args]
    if not audit_hook:
        return [python_path, "-I", "-S", entry, *args]
    return [python_path, "-I", "-S", "-c", WEAK_BOOT, folder, entry, *ro_binds, "--", *args]


async def remove_folder(folder: str) -> None:
    await asyncio.to_thread(remove_tree, folder)
    orphans.release(folder)
