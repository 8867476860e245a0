"""Which sandbox runs the code (bubblewrap, or the weak fallback only where the operator allowed
it), how many runs at once, and the start-up check that refuses a gateway whose configured code
verifiers would otherwise run code without the OS layer."""

from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from tierwise.errors import ConfigError
from tierwise.sandbox import bwrap, cgroup, identity, landlock, weak
from tierwise.sandbox.capacity import Capacity
from tierwise.sandbox.limits import SandboxLimits
from tierwise.sandbox.probe import probe

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, or scripts/install-sandbox.sh; "
                "Fedora: `dnf install bubblewrap`) and make sure user namespaces are enabled "
                "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0)")


log = logging.getLogger("tierwise.sandbox")


class SandboxUnavailable(RuntimeError):
    """Code was to run, but the strong sandbox is missing and the weak one was not allowed."""


@dataclass(slots=True)
class Settings:
    allow_weak: bool = False
    # Where a root gateway cannot switch its code to `run_as` (no CAP_SYS_ADMIN for the staging of a
    # restricted container), run the code as root outside anyway. Off: refused, like a missing sandbox.
    allow_root_outside: bool = False


settings = Settings()
capacity = Capacity()


def configure(*, allow_weak: bool = False, max_concurrent: int | None = None, max_waiting: int = 64,
              wait_s: float = 30.0, run_as: int | str = identity.DEFAULT_RUN_AS,
              run_as_range: str | None = None, allow_root_outside: bool = False, host_scripts: bool = False) -> None:
    """Apply the config's `sandbox:` section (called once when the gateway starts); `host_scripts`: the config
    trusts ensembles whose scripts run on the host (weak.shield_gateway)."""
    global capacity
    settings.allow_weak = allow_weak
    settings.allow_root_outside = allow_root_outside
    try:
        identity.configure(run_as, run_as_range)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    capacity = Capacity(max_concurrent, max_waiting, wait_s)
    span = identity.settings.run_as_range
    # A split check is two runs at once even when max_concurrent is 1 (they share the one slot).
    needed = max(2, capacity.max_concurrent)
    if span is not None and span[1] - span[0] + 1 < needed:
        raise ConfigError(f"sandbox.run_as_range holds {span[1] - span[0] + 1} uids, fewer than the {needed} runs "
                          "that may be in progress at once (sandbox.max_concurrent, and at least the two of a "
                          "split check): each run needs its own")
    weak_run_as.cache_clear()
    weak_read_only_host.cache_clear()
    _weak_host_view.cache_clear()
    weak.shield_gateway(allow_weak, host_scripts)


@dataclass(frozen=True, slots=True)
class Status:
    strong: bool
    layers: tuple[str, ...]  # verified in force for every run in bubblewrap
    problem: str | None
    version: str | None
    # Why runs get no cgroup of their own here (None: each run has its memory and pids cgroups).
    cgroup_problem: str | None = None
    # The user the code runs as outside when the gateway is root (None: the gateway is not root, or
    # the switch was impossible here: `run_as_problem` says why, and the code is root outside).
    run_as: identity.User | None = None
    run_as_problem: str | None = None


SIGPENDING = 64


def set_rlimits(limits: SandboxLimits) -> None:
    """Between fork and exec of bwrap: limits the sandboxed process inherits (and cannot raise:
    it has no capabilities). Only system calls, no allocation-heavy work."""
    mem = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    # Queued signals are counted per user up through the user namespaces: at the inherited limit
    # (~96,000) one run queued them all, and the host user's programs could queue none while it ran.
    resource.setrlimit(resource.RLIMIT_SIGPENDING, (SIGPENDING, SIGPENDING))
    # No raised priority (review32b): RLIMIT_NICE lets a process lower its nice value to 20 - limit, RLIMIT_RTPRIO
    # make itself SCHED_FIFO/SCHED_RR at up to that priority, with no privilege; a gateway started with them
    # (systemd's LimitRTPRIO=/LimitNICE=, limits.conf, `docker run --ulimit rtprio=`) handed them to every run, and
    # a real-time run spinning takes its CPU before any other process. Lowering needs no privilege.
    resource.setrlimit(resource.RLIMIT_NICE, (0, 0))
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    # Memory last: the gateway's own address space (copied by fork) may already be larger, so
    # nothing here may need a new allocation after these two.
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_DATA, (mem, mem))
    # No RLIMIT_NPROC: seccomp refuses every new process (and the count is per user: every run of
    # the sandbox user counts against it, so a limit would let one run starve the others).


def set_core_limit() -> None:
    """Between fork and exec, before the switch of user (a hard limit of 0, `ulimit -c 0` where the gateway
    started, can only be raised by root) and before the weak sandbox's filter (which refuses the change):
    RLIMIT_CORE (1, 1). Not 0: a `core_pattern` piping to a program (systemd-coredump, apport) ignores any
    other value and got the run's memory, up to its limit, as root outside every namespace; at 1 the kernel
    aborts the dump (seccomp_filter.RLIMIT_CORE: the code may not lower it). A gateway that is not root and
    inherited a hard limit of 0 leaves 0: no core file, but a pipe would get the dump. System calls only."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (1, 1))
    except (OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    no_memory_in_dumps()


def no_memory_in_dumps() -> bool:
    """This process's `coredump_filter` 0: a core dump of it (and of what it forks and executes: the filter is kept
    through fork and exec, bubblewrap's program included) holds no memory, only the ELF notes (registers, the list of
    mapped files). A `core_pattern` on a socket (`@`, Linux 6.16) ignores RLIMIT_CORE entirely (the kernel sets the
    limit to infinity for it) and got a crashed run's whole memory as a crash handler outside every namespace; a pipe
    with a hard limit of 0 the same. The run cannot set it back: it has no /proc (bubblewrap, a read-only host, or
    Landlock). False where this process may not write its filter (not dumpable: see weak.shield_gateway, which sets
    it first). System calls only."""
    try:
        fd = os.open("/proc/self/coredump_filter", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, b"0")
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


@functools.cache
def status() -> Status:
    """Probe once per process (runs bwrap once: ~0.1 s)."""
    path = bwrap.bwrap_path()
    if path is None:
        return Status(False, (), f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}", None)
    try:
        # (an empty environment: exec'd, the child is dumpable, its /proc/<pid>/environ its user's to read; review38c)
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, env={}).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return Status(False, (), f"bwrap does not run ({e}): {INSTALL_HINT}", None)
    user = identity.target()
    layers, problem = probe(set_rlimits, user)
    run_as_problem = None
    if problem and user is not None:
        plain_layers, plain_problem = probe(set_rlimits, None)
        if plain_problem is None:
            run_as_problem = f"the gateway is root and its sandboxed code cannot run as uid {user.uid}: {problem}"
            if not settings.allow_root_outside:
                # The config asks for code that is not root outside: no run rather than a root one.
                log.warning("sandbox: %s; refused (sandbox.allow_root_outside is not set)", run_as_problem)
                return Status(False, (), f"{run_as_problem}; the code would be root outside its sandbox, which "
                              f"sandbox.allow_root_outside must allow", version or None, run_as_problem=run_as_problem)
            log.warning("sandbox: %s; the code runs as root outside its sandbox (allow_root_outside)", run_as_problem)
            layers, problem, user = plain_layers, None, None
    if problem:
        problem = f"{problem}; {INSTALL_HINT}"
    if user is not None or os.geteuid() != 0:
        layers += ("unprivileged",)
    found, missing = cgroup.places()
    if missing:
        have = {place.controller for place in found}
        effects = [effect for controller, effect in (
            ("memory", "kernel memory, as inodes in the run's folder, is bounded only by the CPU and wall limits"),
            ("pids", "threads, where a caller allows them, by nothing")) if controller not in have]
        missing = f"{missing} ({'; '.join(effects)})"
        log.warning("sandbox: runs get no cgroup of their own: %s", missing)
    layers += tuple(f"cgroup_{place.controller}" for place in found)
    return Status(problem is None, layers, problem, version or None, missing, user, run_as_problem)


@functools.cache
def weak_run_as() -> identity.User | None:
    """The user the weak sandbox's code runs as when the gateway is root: checked once by starting
    the interpreter as it (None: the gateway is not root, or that failed, said in the log)."""
    user = identity.target()
    if user is None:
        return None
    prefix = os.path.realpath(sys.base_prefix)
    python = bwrap.interpreter()
    prepared = identity.switcher(user, identity.plan([prefix], user))
    try:
        r = subprocess.run([python, "-I", "-S", "-c", "pass"], capture_output=True, timeout=30, env={}, cwd="/",
                           preexec_fn=lambda: identity.switch(prepared))
        if r.returncode == 0:
            return user
        why = r.stderr.decode("utf-8", "replace").strip()[-300:] or f"exit {r.returncode}"
    except (OSError, subprocess.SubprocessError) as e:
        why = str(e)
    log.warning("sandbox: the gateway is root and the weak sandbox's code cannot run as uid %d (%s); it runs as "
                "root", user.uid, why)
    return None


def weak_problem() -> str | None:
    """Why the weak sandbox may not run here (None: it may): its code would be root outside (a root gateway that
    cannot switch to `run_as`) and `allow_root_outside` is not set; or nothing would bound what it opens of the host,
    neither a mount namespace (`weak_read_only_host`) nor Landlock. There a run read every file its user may (a
    world-readable `settings.env` with a key, the operator's 0600 files when it is the gateway's user), wrote /tmp,
    /dev/shm and, as the gateway's user, its home, and listed /proc: refused, not run with the host in sight
    (session 26). No setting lets it: the remedies are the kernel's (bubblewrap and user namespaces, Landlock).
    Nor where, with no mount namespace, nothing bounds the sum of its folder's files (weak.folder_root: no memory
    cgroup and a big /dev/shm): on the host's disk a run filled what the disk had, 16 MB a file (session 27)."""
    if os.geteuid() == 0 and not settings.allow_root_outside and weak_run_as() is None:
        return (f"the gateway is root and the weak sandbox's code cannot run as uid {identity.target().uid} "  # type: ignore[union-attr]
                "(see the log); it would be root outside, which sandbox.allow_root_outside must allow")
    if not weak_read_only_host() and landlock.abi() < 1:
        who = "root" if os.geteuid() == 0 and weak_run_as() is None else \
            f"uid {(weak_run_as() or identity.own_user()).uid}"
        return (f"its code would see and write the host as {who}: this gateway can make no mount namespace for it "
                f"({'no CAP_SYS_ADMIN' if os.geteuid() == 0 else 'no unprivileged user namespaces'}) and the kernel "
                "has no Landlock (Linux 5.13+ with `landlock` in its lsm= list); enable one of them, or "
                "bubblewrap with user namespaces")
    if not weak_read_only_host() and weak.folder_root() is None:
        shm = weak.memory_folder_root()
        why = (f"{shm} is {_size(shm)}, more than 1/{weak.SMALL_SHARE} of the RAM, and runs get no memory cgroup to pay for "
               "it" if shm else f"{weak.SHARED_MEMORY} is not a writable tmpfs")
        return ("its folder would be on the host's disk, where nothing bounds the sum of its files (RLIMIT_FSIZE bounds "
                "one file; fallocate fills gigabytes at no CPU): this gateway can make no mount namespace for a tmpfs of "
                f"its own ({'no CAP_SYS_ADMIN' if os.geteuid() == 0 else 'no unprivileged user namespaces'}) and {why}; "
                "give it a cgroup with the memory controller delegated, CAP_SYS_ADMIN, bubblewrap with user namespaces, "
                f"or a smaller {weak.SHARED_MEMORY} (Docker's default: 64 MB)")
    return None


def _size(path: str) -> str:
    st = os.statvfs(path)
    return f"{st.f_blocks * st.f_frsize >> 20} MB"


@functools.cache
def weak_read_only_host() -> bool:
    """Whether the weak sandbox's runs can see the host read-only but for their folder, and no /proc: a root
    gateway that can make a mount namespace, or one that is not root where the kernel lets it make a user
    namespace, with mount_setattr (Linux 5.12). Checked once, by a run (two where no PID namespace can be made)."""
    return _weak_host_view()[0]


def weak_pid_namespace() -> bool:
    """Whether those runs also get a PID namespace of their own (tierwise.sandbox.pidns): an extra layer. A kernel
    that allows the mount namespace but refuses CLONE_NEWPID (max_pid_namespaces 0, a seccomp profile refusing it)
    keeps the read-only host without it (review36a: requiring it dropped such machines' runs to Landlock alone)."""
    return _weak_host_view()[1]


@functools.cache
def _weak_host_view() -> tuple[bool, bool]:
    """(read-only host, PID namespace): the probe run with the PID namespace, then without it where that failed."""
    why = _read_only_probe(True)
    if why is None:
        return True, True
    user = weak_run_as()
    if user is None and os.geteuid() == 0:
        return False, False
    if _read_only_probe(False) is None:
        log.warning("sandbox: the weak sandbox's runs get no PID namespace of their own here (%s): they see the "
                    "host's PIDs (the host stays read-only)", why)
        return True, False
    log.warning("sandbox: the weak sandbox's runs cannot be given a read-only view of the host (%s); their code "
                "may write wherever uid %d may", why, (user or identity.own_user()).uid)
    return False, False


def _read_only_probe(pid_namespace: bool) -> str | None:
    """None when a probe run saw the host read-only (and, `pid_namespace`, was PID 2 under our init); else why not."""
    user = weak_run_as()
    if user is None and os.geteuid() == 0:
        return "the gateway is root and cannot switch to its run_as user"
    folder = tempfile.mkdtemp(prefix="tierwise-check-")
    try:
        if user is not None:
            os.chown(folder, user.uid, user.gid)
        # the covers a run gets (weak.masks: the host's folders but the system's, /dev but five devices), staged alike
        hide, shown = weak.masks([folder, *weak.installation()])
        prepared = identity.switcher(user, identity.plan([*weak.installation(), *shown], user, hide, stage=identity.PROC_STAGE,
                                                         files=weak.top_files(), inside=weak.private_inside()),
                                     identity.run_folder(folder, {"f": b"in"}, 1 << 20, user or identity.own_user(),
                                                         pid_namespace))
        probe = "import os\nassert open('f').read() == 'in'\nopen('w', 'w').close()\nassert not os.listdir('/proc')\n" \
                "open('/dev/null', 'w').write('x')\n" \
                + ("assert (os.getpid(), os.getppid()) == (2, 1)\n" if pid_namespace else "") + \
                f"st = os.statvfs('/dev/shm')\nassert st.f_blocks * st.f_frsize == {bwrap.SHM_MB << 20}, st\n" \
                "open('/dev/shm/tw', 'w').close()\n"  # (its own /dev/shm, session 37: never the host's)
        r = subprocess.run([bwrap.interpreter(), "-I", "-S", "-c", probe], capture_output=True, timeout=30, env={},
                           cwd=folder, preexec_fn=lambda: identity.switch(prepared))
        if r.returncode == 0:
            return None
        return r.stderr.decode("utf-8", "replace").strip()[-300:] or f"exit {r.returncode}"
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def strong_or_weak() -> bool:
    """True: run in bubblewrap. False: the weak sandbox, which the config allowed."""
    st = status()
    if st.strong:
        return True
    if settings.allow_weak:
        if (why := weak_problem()) is not None:
            raise SandboxUnavailable(f"the code sandbox is unavailable ({st.problem}); weak sandbox refused: {why}")
        return False
    raise SandboxUnavailable(f"the code sandbox is unavailable ({st.problem})")


def require(what: str) -> None:
    """Refuse to start when `what` (a verifier that runs code) would run without the strong sandbox,
    or (the weak one allowed) as root outside when that was not allowed."""
    st = status()
    if st.strong:
        return
    if settings.allow_weak:
        if (why := weak_problem()) is not None:
            raise ConfigError(f"{what} runs model-written code, but the weak sandbox refuses here: {why}")
        return
    raise ConfigError(f"{what} runs model-written code, but the sandbox cannot be built here: {st.problem}. "
                      "To run it anyway with the weak sandbox (rlimits, seccomp and an audit hook; the host hidden "
                      "by a mount namespace or Landlock, no network namespace), set `sandbox: {allow_weak: true}`.")


def runs_as(user: identity.User | None) -> str:
    """Who a run's code is outside its sandbox, in words (the run's record and doctor)."""
    if user is not None:
        return f"uid {user.uid}"
    if os.geteuid() == 0:
        return "ROOT (uid 0)"
    return f"the gateway's own user (uid {os.geteuid()})"
