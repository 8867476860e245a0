"""A cgroup of its own for each sandbox run, where this machine lets the gateway make one.

RLIMIT_AS counts the run's address space, not the kernel memory it makes the kernel hold: inodes
and dentries in its tmpfs (~1 KB each: one run made 1,050,000 empty folders, ~1 GB of slab, in
its 10 s), page tables, its tmpfs pages. A memory cgroup counts all of it: each run gets
`memory.max` (v1: `memory.limit_in_bytes`) = its memory limit + its folder's size + a little for
the kernel, and `pids.max` (its tasks; the bound threads had nothing else to give them).

Where: below the gateway's own cgroup in each controller's hierarchy (/proc/self/cgroup), v2
where the controller is delegated there, else v1. cgroup v2 refuses to enable a controller for
the children of a cgroup that holds processes (the gateway's own, always, unless it is the root): there the
operator runs the gateway in a leaf named `tierwise-gateway` (LEAF) below a cgroup delegated to it
(systemd's `Delegate=yes`; docs/security/sandbox.md), and the runs' cgroups go beside that leaf, in
the delegated cgroup; else it runs without (a doctor line and one log line say which). The sandboxed process joins between fork and exec of bubblewrap (through descriptors opened and checked when the cgroups were made), so every
task of the run is inside from its first instruction; the run's cgroup is emptied (cgroup.kill,
or SIGKILL to what it lists, all of them the run's own) and removed after the run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import errno
import functools
import itertools
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("tierwise.sandbox")

CONTROLLERS = ("memory", "pids")
# Kernel memory beyond the run's own memory and folder: buffers of its descriptors (~7 MB at the
# defaults), page tables, the few inodes an honest program makes.
KERNEL_MB = 32
# Tasks: bubblewrap, its init in the new PID namespace, the program; more when threads are allowed.
TASKS = 4
THREADS = 64
_names = itertools.count()


@dataclass(frozen=True, slots=True)
class Place:
    controller: str
    parent: str  # the gateway's own cgroup in that controller's hierarchy
    v2: bool


def _mounts() -> list[tuple[str, str, str, str]]:
    """(root, mount point, fs type, super options) of each cgroup mount."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if len(fields) >= 5 and len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
                out.append((fields[3], fields[4].replace("\\040", " "), rest[0], rest[2]))
    return out


def _inside(root: str, mount: str, path: str) -> str | None:
    if path != root and not path.startswith(root.rstrip("/") + "/"):
        return None
    return os.path.join(mount, path[len(root):].lstrip("/")).rstrip("/") or "/"


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def _read_in(folder: str, dir_fd: int | None, name: str) -> str:
    """The file `name` of a run's cgroup: through the folder's descriptor while it is open."""
    if dir_fd is None:
        return _read(os.path.join(folder, name))
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    with open(fd, encoding="utf-8") as fh:
        return fh.read().strip()


def _write(path: str, value: str, dir_fd: int | None = None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


# The check and the join through one descriptor (session 33): the folders were checked by path (lstat: this user's)
# and joined by path between fork and exec, so a user who may make folders in the gateway's cgroup swapped a checked
# folder for one of theirs in between (rmdir of the empty folder, mkdir of their own under the same name): a root
# gateway's run joined it (their cpu.shares, their memory.limit, their view of its PIDs). Now the folder is opened once
# (O_DIRECTORY|O_NOFOLLOW), its owner read from that descriptor, its files opened relative to it, and `cgroup.procs`
# held open from the check to the join: a folder swapped after the check is not the one joined (the write into the
# removed one fails, ENODEV, and the run does not start).
def _open_own(folder: str) -> int:
    """A descriptor of `folder`, which must be this process's user's (OSError EPERM where it is not)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if os.fstat(fd).st_uid != os.geteuid():
        os.close(fd)
        raise OSError(errno.EPERM, "another user's cgroup", folder)
    return fd


def _procs_of(dir_fd: int) -> int:
    """`cgroup.procs` of the folder `dir_fd`, open for writing, this process's user's (OSError where not)."""
    fd = os.open("cgroup.procs", os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    if os.fstat(fd).st_uid != os.geteuid():
        os.close(fd)
        raise OSError(errno.EPERM, "another user's cgroup.procs")
    return fd


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return True


# The gateway's own cgroup v2, when it is named so, is a leaf the operator made for it in a cgroup delegated to it:
# the runs' cgroups go in that delegated cgroup, beside the leaf. Below the gateway's own cgroup they never could on
# v2 (session 28): a controller is enabled for a cgroup's children only while it holds no process, and the gateway's
# holds the gateway, so the advice "run the gateway in a leaf below a delegated cgroup" led to the same refusal.
LEAF = "tierwise-gateway"
_NOT_DELEGATED = f": not delegated to the gateway's user; docs/security/sandbox.md, a leaf named {LEAF}"


def _v2_place(controller: str, own: str, mounts: list[tuple[str, str, str, str]]) -> Place | str:
    for root, mount, kind, _ in mounts:
        folder = _inside(root, mount, own) if kind == "cgroup2" else None
        if folder is None:
            continue
        leaf = os.path.basename(folder) == LEAF
        if leaf:
            folder = os.path.dirname(folder)
        try:
            if controller not in _read(os.path.join(folder, "cgroup.controllers")).split():
                return f"cgroup v2 at {folder} has no {controller} controller"
            if controller not in _read(os.path.join(folder, "cgroup.subtree_control")).split():
                _write(os.path.join(folder, "cgroup.subtree_control"), f"+{controller}")
        except OSError as e:
            # (in the leaf already, the advice to go there would be no help: say what is wrong with the cgroup above)
            why = (f"{e.strerror}: " + ("it holds a process; every process of it goes in a leaf" if e.errno == errno.EBUSY
                                        else "it is not delegated to the gateway's user") if leaf else
                   f"{e.strerror}; run the gateway in a leaf named {LEAF} below a cgroup delegated to it")
            return (f"cgroup v2: {controller} cannot be enabled for the children of {folder}"
                    + (f", the cgroup above the gateway's leaf {LEAF}" if leaf else "") + f" ({why}: docs/security/sandbox.md)")
        return Place(controller, folder, True)
    return "no cgroup v2 mount"


def _v1_place(controller: str, own: dict[str, str], mounts: list[tuple[str, str, str, str]]) -> Place | str:
    path = own.get(controller)
    for root, mount, kind, opts in mounts:
        if kind == "cgroup" and controller in opts.split(",") and path is not None:
            folder = _inside(root, mount, path)
            if folder is not None:
                return Place(controller, folder, False)
    return f"no cgroup v1 {controller} hierarchy"


# A failure of the moment at start (review33a): what `places` finds is kept for the process's life, and one EMFILE
# (the gateway's descriptors full for a moment) in the check of the memory controller left every later run without
# its memory cgroup (bubblewrap) or refused every weak run under Landlock alone (its folder then has no bound): a
# check that fails for want of descriptors, memory or a moment is tried again, a few times, before it is believed.
TRANSIENT = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN, errno.EINTR, errno.EBUSY})
TRIES = 5


def _try(place: Place) -> str | None:
    """Make, limit and remove a child: None when it works, else why not."""
    why: str | None = None
    for attempt in range(TRIES):
        why, code = _try_once(place)
        if why is None or code not in TRANSIENT:
            break
        time.sleep(0.05 * (attempt + 1))
    return why


def _try_once(place: Place) -> tuple[str | None, int | None]:
    child = os.path.join(place.parent, f"tierwise-check-{os.getpid()}")
    try:
        os.mkdir(child)
    except FileExistsError:
        pass
    except OSError as e:
        return f"cannot make a cgroup in {place.parent} ({e.strerror}{_NOT_DELEGATED if place.v2 else ''})", e.errno
    try:
        fd = _open_own(child)
        try:
            _limit(place, fd, 64 << 20, TASKS)
        finally:
            os.close(fd)
    except OSError as e:
        return f"cannot limit a cgroup in {place.parent} ({e.strerror})", e.errno
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(child)
    return None, None


def per_run_memory() -> bool:
    """Whether each run gets a memory cgroup of its own here."""
    return any(place.controller == "memory" for place in places()[0])


def _own() -> dict[str, str]:
    """This process's cgroup in each hierarchy, by controller ("": cgroup v2)."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="utf-8") as fh:
        for line in fh:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(",") if names else [""]:
                own[name] = path
    return own


@functools.cache
def places() -> tuple[tuple[Place, ...], str | None]:
    """Where each run's cgroup goes, per controller, and what is missing (None: nothing)."""
    try:
        own = _own()
        mounts = _mounts()
    except (OSError, ValueError) as e:
        return (), f"cgroups cannot be read here ({e})"
    found: list[Place] = []
    missing: list[str] = []
    for controller in CONTROLLERS:
        whys = []
        for place in (_v2_place(controller, own[""], mounts) if "" in own else "no cgroup v2",
                      _v1_place(controller, own, mounts)):
            why = place if isinstance(place, str) else _try(place)
            if why is None and isinstance(place, Place):
                found.append(place)
                break
            whys.append(str(why))
        else:
            missing.append(f"{controller}: {'; '.join(whys)}")
    for place in found:
        _sweep(place.parent)
    return tuple(found), ("; ".join(missing) or None)


# The CPU (review31a): each run is a session of its own (the runner's setsid: bubblewrap's, or the weak run's), and
# where the kernel groups sessions for the scheduler (autogroup) each weighed as much as the gateway's whole session:
# two runs spinning took 0.96-1.08 times the gateway's CPU each (bench/RESULTS.md, "Sandbox attack round 12"). Every
# run of a gateway process joins one cpu cgroup, below the gateway's own, at the weight of one process (the kernel's
# default): the runs at once weigh what one did, and a lone run what it did before (a cgroup per run at 1/N of that
# slowed a lone run's start-up 2x under load, round 12). cgroup v1 only: on v2 a process is in one cgroup for every
# controller, and the runs' memory and pids cgroups would have to move below this one (not done; doctor says nothing
# of it, the runs weigh as before). One for the gateway's process group, not for each process (session 32): the
# workers of `serve --workers N` are forked, in the supervisor's group and session, each with slots of its own, and a
# cgroup per worker made the runs of N workers weigh N processes (two workers' spinning runs: ~1x the gateway's CPU
# each, as with none).
def runs_cpu() -> str | None:
    """The cpu cgroup (v1) every run of this process group joins; None where it cannot be made. Made again where it is
    gone: another gateway's sweep that took the group for a dead one (its leader gone, or its PID in another PID
    namespace) removes it empty."""
    pid, group = os.getpid(), os.getpgrp()
    parent = _cpu_parent(pid)
    if parent is None:
        return None
    folder = os.path.join(parent, f"tierwise-{group}-runs")
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except OSError as e:
        _cannot(parent, e.strerror or "")
        return None
    else:
        if group == pid:  # (by the group's leader only: a worker's exit would take it from the others' next runs)
            _remove_at_exit(folder)
    fd = runs_cpu_procs(folder)
    if fd is None:
        _cannot(parent, "it is another user's")
        return None
    os.close(fd)
    return folder


# Whose the runs' cpu cgroup is (review32b): its name is predictable (`tierwise-<pgid>-runs`) and any user who may make a
# folder in the parent (a cgroup delegated to that user, or group-writable) made it first, with its files: a root
# gateway, for which every file is writable, joined its runs to it, and that user set their weight (cpu.shares: 2 or
# 262144), their real-time time and read their PIDs. The folder and its `cgroup.procs` are to be this process's user's,
# read from the descriptors the join then uses (session 33: checked by path, it could be swapped before the join).
def runs_cpu_procs(folder: str) -> int | None:
    """`cgroup.procs` of the runs' cpu cgroup `folder`, open for writing, where the folder and the file are this
    process's user's; else None."""
    try:
        dir_fd = _open_own(folder)
    except OSError:
        return None
    try:
        return _procs_of(dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)


# Where no shared cpu cgroup holds the runs (cgroup v2, where it is not made; a gateway that may make none), each run
# weighed as much as the gateway for the CPU (session 33, `bench/sandbox_attack_round14.py --only share`: 4 runs spinning
# took 3.75x the gateway's CPU together; with the v1 cgroup 1.02x). There each run starts `runs_nice` nice levels below
# the gateway, so that `max_concurrent` runs at once weigh no more than one of its processes, as the shared cgroup makes
# them: the task's nice (what the scheduler weighs where the runs' tasks share a cgroup with the gateway, a service's
# cgroup with no cpu controller of its own) and, where the kernel groups sessions (autogroup, a gateway in the root
# cgroup), the run's session's (bubblewrap's too since session 34: its --new-session started a fresh one at nice 0
# after it, 4 runs ~4x the gateway's CPU; it is not passed, and a run's own `setsid` is refused). A lone run on an idle
# machine still takes a whole core (nice weighs only against others who want the CPU).
WEIGHTS = (1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15)  # nice 0..19


def runs_nice(runs: int) -> int:
    """Nice levels below the gateway at which `runs` runs at once weigh no more than one process of it."""
    return next((n for n, weight in enumerate(WEIGHTS) if runs * weight <= WEIGHTS[0]), len(WEIGHTS) - 1)


PR_SET_DUMPABLE = 4


def _libc_prctl() -> Any:
    """prctl, looked up once in the gateway (never between fork and exec); None where there is none."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (AttributeError, OSError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _libc_prctl()


def _lower_priority(increment: int) -> None:
    """Between fork and exec: `increment` nice levels lower, for the task and its session's autogroup. System calls."""
    if increment <= 0:
        return
    os.nice(increment)
    try:
        _write("/proc/self/autogroup", str(increment))
    except PermissionError:
        # A gateway that is not root made itself not dumpable (weak.not_dumpable: a weak sandbox's, or before a
        # trusted script): its /proc/self files are root's, and the write failed in silence, leaving the run a whole
        # autogroup at nice 0 beside the gateway's (session 38). This copy, about to exec, is made dumpable again,
        # as identity.switch does for its user namespace; and not dumpable again at once (review38c): until its exec
        # it holds the gateway's memory and environment, which a trusted host script of the user read meanwhile.
        # (The exec makes it dumpable again, holding only what it execs.)
        if _PRCTL is not None and _PRCTL(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0:
            try:
                with contextlib.suppress(OSError):
                    _write("/proc/self/autogroup", str(increment))
            finally:
                _PRCTL(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except OSError:  # (no autogroup: a kernel without it, /proc not mounted)
        pass


@functools.cache
def _cpu_parent(pid: int) -> str | None:
    """The gateway's own cgroup in the v1 cpu hierarchy (for the process `pid`: a forked worker makes its own)."""
    try:
        place = _v1_place("cpu", _own(), _mounts())
    except (OSError, ValueError):
        return None
    if isinstance(place, str):
        return None
    _sweep(place.parent)
    return place.parent


@functools.cache
def _cannot(parent: str, why: str) -> None:
    """Said once per place and reason (a gateway that is not root: at every run otherwise)."""
    log.warning("sandbox: the runs' cpu cgroup cannot be made in %s (%s): each run weighs as much as the gateway for "
                "the CPU", parent, why)


@functools.cache
def _remove_at_exit(folder: str) -> None:
    atexit.register(_remove_if_empty, folder)


def _remove_if_empty(folder: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(folder)


def _sweep(parent: str) -> None:
    """Remove the runs' cgroups a gateway that died (killed mid-run) left behind: empty by now, as
    bubblewrap's --die-with-parent took their tasks. A cgroup that still holds a task stays."""
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            pid = name.split("-")[1] if name.startswith("tierwise-") and name.count("-") == 2 else ""
            # (ASCII digits that fit a PID: `²` or 20 digits raised out of the sweep and out of every run's start)
            if not (pid.isascii() and pid.isdigit() and len(pid) <= 9) or int(pid) in (os.getpid(), os.getpgrp()):
                continue
            try:
                # The runs' cpu cgroup is a process group's (runs_cpu): alive while any process of the group is, the
                # workers of a gateway whose leader (a shell, a supervisor) is gone among them (review32b).
                (os.killpg if name.endswith("-runs") else os.kill)(int(pid), 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(parent, name))
            except PermissionError:
                pass  # alive, another user's


def _limit(place: Place, folder: int, memory: int, tasks: int) -> None:
    """Write the limits of the cgroup whose folder (made in `place`) is the descriptor `folder`."""
    if place.controller == "pids":
        _write("pids.max", str(tasks), folder)
        return
    # No swap beyond the limit either (memsw must be written after the limit it may not be below).
    for name, swap in (("memory.max", "memory.swap.max"), ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")):
        if place.v2 == (name == "memory.max"):
            _write(name, str(memory), folder)
            if _exists(swap, folder):
                _write(swap, "0" if place.v2 else str(memory), folder)


class RunCgroup:
    """The cgroups of one run, one per controller in force."""

    def __init__(self, memory_mb: int, work_mb: int, threads: bool, runs: int = 1) -> None:
        """`runs`: how many runs of this process may be in progress at once (their weight without the cpu cgroup)."""
        self.folders: list[tuple[Place, str]] = []
        self._fds: dict[str, int] = {}  # each folder's descriptor (its files are read and written through it)
        self._joins: list[int] = []  # `cgroup.procs` of each, and of the runs' cpu cgroup: written by join()
        name = f"tierwise-{os.getpid()}-{next(_names)}"
        memory = (memory_mb + work_mb + KERNEL_MB) << 20
        try:
            for place in places()[0]:
                folder = os.path.join(place.parent, name)
                os.mkdir(folder)
                self.folders.append((place, folder))
                fd = self._fds[folder] = _open_own(folder)  # (made just now: another user's only if swapped since)
                _limit(place, fd, memory, TASKS + (THREADS if threads else 0))
                self._joins.append(_procs_of(fd))
        except OSError:
            self.release()
            self.remove_now()
            raise
        self.cpu = runs_cpu()  # (shared by the runs of this process: never emptied or removed here)
        if self.cpu is not None:
            procs = runs_cpu_procs(self.cpu)  # (checked again on the descriptor joined: it may have been swapped)
            if procs is None:
                _cannot(os.path.dirname(self.cpu), "it is another user's")
                self.cpu = None
            else:
                self._joins.append(procs)
        self.nice = 0 if self.cpu is not None else runs_nice(runs)
        self.procs = [os.path.join(folder, "cgroup.procs") for _, folder in self.folders]
        if self.cpu is not None:
            self.procs.append(os.path.join(self.cpu, "cgroup.procs"))

    @property
    def layers(self) -> list[str]:
        return [f"cgroup_{place.controller}" for place, _ in self.folders] + (["cgroup_cpu"] if self.cpu else [])

    def join(self) -> None:
        """Between fork and exec: the calling process (and all it starts) joins, through the descriptors opened and
        checked when the cgroups were made, and (without the shared cpu cgroup) lowers its priority. System calls only."""
        for fd in self._joins:
            os.write(fd, b"0")
        _lower_priority(self.nice)

    def joined(self) -> None:
        """After the spawn: the `cgroup.procs` descriptors are no longer needed."""
        for fd in self._joins:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._joins = []

    def release(self) -> None:
        self.joined()
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = {}

    def _files(self) -> list[tuple[Place, str, int | None]]:
        """(place, folder, its descriptor: None once released) of each of the run's cgroups."""
        return [(place, folder, self._fds.get(folder)) for place, folder in self.folders]

    def out_of_memory(self) -> bool:
        """The kernel killed a task of the run for the cgroup's memory limit (read before remove)."""
        for place, folder, fd in self._files():
            if place.controller == "memory":
                with contextlib.suppress(OSError, ValueError):
                    lines = _read_in(folder, fd, "memory.events" if place.v2 else "memory.oom_control")
                    counts = dict(line.split() for line in lines.splitlines() if len(line.split()) == 2)
                    return int(counts.get("oom_kill", "0")) > 0
        return False

    def _kill(self) -> None:
        for place, folder, fd in self._files():
            if place.v2 and fd is not None and _exists("cgroup.kill", fd):
                with contextlib.suppress(OSError):
                    _write("cgroup.kill", "1", fd)
                continue
            with contextlib.suppress(OSError, ValueError):
                for pid in _read_in(folder, fd, "cgroup.procs").split():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(pid), signal.SIGKILL)  # a task of this run: nothing else is in it

    def remove_now(self) -> bool:
        left = []
        for place, folder in self.folders:
            try:
                os.rmdir(folder)
            except FileNotFoundError:
                pass
            except OSError:
                left.append((place, folder))
        self.folders = left
        return not left

    async def remove(self) -> None:
        """Kill whatever of the run is left and remove its cgroups (the last tasks take a moment to go)."""
        for _ in range(250):
            self._kill()
            if self.remove_now():
                self.release()
                return
            await asyncio.sleep(0.02)
        self.release()
        log.warning("sandbox: the run's cgroups %s could not be removed", [f for _, f in self.folders])
