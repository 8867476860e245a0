"""Run untrusted code (model-written Python, ensemble script agents) in the sandbox.

`run_python` runs code with extra files beside it; `run_script` runs a script (or an executable)
that lives in a folder shown read-only inside. Both wait for a slot (tierwise.sandbox.capacity),
run in bubblewrap (tierwise.sandbox.bwrap) or, only where the config allows it, the weak sandbox
(tierwise.sandbox.weak), and are supervised here: a wall-clock timeout that kills the whole
sandbox, and caps on captured output so a flood of prints cannot exhaust the gateway's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from tierwise.sandbox import (
    backend,
    bwrap,
    cgroup,
    identity,
    landlock,
    orphans,
    paced_output,
    pidns,
    seccomp_filter,
    weak,
)
from tierwise.sandbox.audit_boot import BOOT
from tierwise.sandbox.capacity import SandboxBusy
from tierwise.sandbox.limits import SandboxLimits, SandboxResult


async def run_python(code: str, *, files: dict[str, str] | None = None, stdin: str | None = None,
                     limits: SandboxLimits | None = None, audit_hook: bool = True) -> SandboxResult:
    """Run `code` as the main script of a sandboxed interpreter; `files` are extra files beside it
    (plain names), in the run's own folder, which is also its working directory.

    `audit_hook=False` leaves only the OS layer: for tests that show it holds on its own.
    Never raises for anything the code does; raises SandboxUnavailable when no sandbox is allowed.
    """
    return await _run(_named(code, files), "main.py", [], None if stdin is None else stdin.encode(), limits or SandboxLimits(),
                      [], audit_hook, python=True)


async def run_script(script: str, stdin: bytes = b"", *, limits: SandboxLimits | None = None,
                     ro_binds: Sequence[str] = (), args: Sequence[str] = (), python: bool = True,
                     audit_hook: bool = True) -> SandboxResult:
    """Run the script file `script` in the sandbox with `stdin` as its standard input.

    `script` must lie inside one of `ro_binds`: host folders shown read-only, at the same path,
    inside the sandbox (nothing else of the host is). `python=True` runs it with the sandbox's
    interpreter (and the audit hook unless `audit_hook=False`); `python=False` executes it
    directly (an executable that needs nothing but the sandbox's libraries). The working
    directory is the run's own empty, writable folder. `args` are passed to the script.
    Never raises for anything the script does; `result.busy` when no slot was free in time.
    """
    real = os.path.realpath(script)
    folders = [os.path.realpath(f) for f in ro_binds]
    if not any(real.startswith(f.rstrip("/") + "/") for f in folders):
        raise ValueError(f"the script {script!r} is not inside a folder of ro_binds")
    return await _run({}, real, list(args), stdin, limits or SandboxLimits(), folders, audit_hook, python=python)


async def _run(files: dict[str, bytes], entry: str, args: list[str], stdin: bytes | None, limits: SandboxLimits,
               ro_binds: list[str], audit_hook: bool, *, python: bool) -> SandboxResult:
    try:
        async with backend.capacity.slot(), _started(files, entry, args, stdin is not None, limits, ro_binds,
                                                      audit_hook and python, python) as live:
            if live.refused is not None:
                return live.refused
            assert live.proc is not None
            result = await _supervise(live.proc, stdin, limits, live.layers)
            result.out_of_memory = live.out_of_memory()
            result.runs_as = live.runs_as
            return result
    except SandboxBusy as e:
        return SandboxResult(None, "", f"sandbox busy: {e}", busy=True)


@dataclass(slots=True)
class LiveRun:
    """A sandboxed interpreter while it runs: its pipes (`proc.stdin`, `proc.stdout`, `proc.stderr`)
    are the caller's to drive. `refused` holds the result when the run could not start."""

    proc: asyncio.subprocess.Process | None
    layers: list[str]
    refused: SandboxResult | None = None
    group: cgroup.RunCgroup | None = None
    runs_as: str = ""  # who the code is outside its sandbox, in words ("uid 65534", "ROOT (uid 0)")

    def out_of_memory(self) -> bool:
        return self.group is not None and self.group.out_of_memory()

    def kill(self) -> None:
        if self.proc is not None:
            _kill_group(self.proc.pid)


@contextlib.asynccontextmanager
async def open_python(code: str, *, files: dict[str, str] | None = None, limits: SandboxLimits | None = None,
                      audit_hook: bool = True, line_limit: int = 65536,
                      own_slot: bool = True) -> AsyncIterator[LiveRun]:
    """Start `code` like `run_python` and hand its pipes to the caller while it runs (for a
    protocol between sandboxes: tierwise.verifiers.checker). Every limit of a run holds (slot,
    cgroup, seccomp, rlimits); the wall clock is the caller's to enforce, and leaving the block
    kills the sandbox. Raises SandboxBusy when no slot is free in time; `own_slot=False`: the
    caller holds one for it (`backend.capacity.pair()` for two runs at once)."""
    limits = limits or SandboxLimits()
    data = _named(code, files)
    slot = backend.capacity.slot() if own_slot else contextlib.nullcontext()
    async with slot, _started(data, "main.py", [], True, limits, [], audit_hook, True,
                                                  line_limit=line_limit, conversation=True) as live:
        yield live


def _named(code: str, files: dict[str, str] | None) -> dict[str, bytes]:
    named = {**(files or {}), "main.py": code}
    for name in named:
        if not name or "/" in name or name.startswith(".") or "\0" in name:
            raise ValueError(f"sandbox file names must be plain names, got {name!r}")
    return {name: text.encode("utf-8", "surrogatepass") for name, text in named.items()}


@contextlib.asynccontextmanager
async def _started(files: dict[str, bytes], entry: str, args: list[str], stdin: bool, limits: SandboxLimits,
                   ro_binds: list[str], audit_hook: bool, python: bool, *,
                   line_limit: int = 65536, conversation: bool = False) -> AsyncIterator[LiveRun]:
    """The process of one run, started in bubblewrap (or the weak sandbox where allowed); on the
    way out it is killed, waited for, and its cgroup, descriptors and folder are removed."""
    strong = await asyncio.to_thread(backend.strong_or_weak)  # probes once: keep it off the loop
    if strong:
        async with _started_bwrap(files, entry, args, stdin, limits, ro_binds, audit_hook, python,
                                  line_limit, conversation) as live:
            yield live
        return
    own_uid = _own_uid(await asyncio.to_thread(backend.weak_run_as))  # checked once
    user, own = await own_uid.__aenter__()
    folder: str | None = None
    proc: asyncio.subprocess.Process | None = None
    group: cgroup.RunCgroup | None = None
    try:
        read_only = await asyncio.to_thread(backend.weak_read_only_host)  # checked once
        # (an extra layer where the kernel allows it: without, the host stays read-only, review36a; known once the
        # read-only probe above has run: no second hop to a thread)
        pid_ns = read_only and backend.weak_pid_namespace()
        # With its own tmpfs folder the run gets copies of its files there: on the host's disk they were readable
        # by every run of its uid (the tests of a split check, by the answer of another check running then).
        # With no mount namespace, the folder goes to the shared-memory tmpfs where its sum is bounded (weak.folder_root:
        # the run's memory cgroup pays for it, or the tmpfs is small): the disk has no bound on the sum of the run's
        # files, and a weak sandbox that has only the disk is refused (backend.weak_problem).
        root = None if read_only else await asyncio.to_thread(weak.folder_root)
        if orphans.sweep_due():  # folders of gateway processes killed outright (tierwise.sandbox.orphans)
            await asyncio.to_thread(orphans.sweep)
        folder = await asyncio.to_thread(weak.make_folder, {} if read_only else files, user, root)
        if entry in files:
            entry = os.path.join(folder, entry)
        argv = weak.argv(folder, entry, args, ro_binds, python, audit_hook)
        # (compiled once; on a writable host no chmod/chown/times by path when the run is the gateway's own user
        # or root: seccomp_filter.PATH_METADATA. A run switched to a user of its own (a root gateway without
        # CAP_SYS_ADMIN: a container's default) changes only what that user owns, its folder's files: refused
        # there, shutil.copy, copy2 and copytree failed with EPERM.)
        confine = await asyncio.to_thread(weak.filter_loader, limits.threads, not read_only and user is None,
                                          not read_only, not pid_ns)
        if read_only and (need := weak.folder_bytes(files)) > limits.work_mb << 20:
            # (copied into its tmpfs between fork and exec, they would fail there: as bubblewrap's run, not run)
            yield LiveRun(None, [], SandboxResult(None, "", f"sandbox: the run's files ({need} bytes) do not "
                                                            f"fit its folder (work_mb {limits.work_mb}); not run"))
            return
        # The cgroups bubblewrap's runs get (where the gateway can make them): without, a weak run with threads
        # allowed started as many as it asked (1,000 of 1,000), and kernel memory had no bound but the folder's.
        try:
            # (with the host read-only, the PID namespace's keeper and init are in them too: tierwise.sandbox.pidns)
            # (and, with the host read-only, its /dev/shm: tierwise.sandbox.identity.switch)
            group = cgroup.RunCgroup(limits.memory_mb, limits.work_mb + (pidns.KEEPERS_MB if pid_ns else 0)
                                     + (bwrap.SHM_MB if read_only else 0),
                                     limits.threads, backend.capacity.max_concurrent)
        except OSError as e:
            cgroup.log.warning("sandbox: the run's cgroup cannot be made: %s", e)
            yield LiveRun(None, [], SandboxResult(None, "", f"sandbox: the run's cgroup cannot be made "
                                                            f"({e.strerror}); not run"))
            return
        # The cgroups bound the run where it cannot rewrite their files: they are the gateway's (a run of a gateway that
        # is not root, in cgroups delegated to its user, raised its own pids.max), so only another user or, with
        # /sys read-only, the run's mount namespace keeps it out (joined anyway: accounting, the cleanup).
        # (Landlock keeps the run out of /sys too: tierwise.sandbox.landlock)
        lock = await asyncio.to_thread(weak.landlock_rules, folder, argv[0], ro_binds, read_only)
        bounded = read_only or user is not None or lock is not None
        # The gateway's folder and home covered (with the host read-only), what the run needs in them shown again.
        hide, shown = weak.masks([folder, *weak.installation(), argv[0], *ro_binds]) if read_only else ((), ())
        switch = identity.switcher(user, identity.plan([*weak.installation(), *ro_binds, *shown], user, hide,
                                                       stage=identity.PROC_STAGE if read_only else None,
                                                       files=weak.top_files() if read_only else (),
                                                       inside=weak.private_inside() if read_only else ()),
                                   identity.run_folder(folder, files, limits.work_mb << 20,
                                                       user or identity.own_user(), pid_ns) if read_only else None)
        try:
            proc = await _spawn(argv, stdin, limits, cwd=folder, pass_fds=[], line_limit=line_limit, conversation=conversation, group=group,
                                confine=weak.dying_with(os.getpid(), confine, lock), switch=switch)
        except (OSError, subprocess.SubprocessError) as e:
            yield _not_started(e)
            return
        yield LiveRun(proc, ["rlimits"] + (["seccomp"] if confine else []) + (["audit"] if audit_hook else [])
                      + (["unprivileged"] if user is not None or os.geteuid() != 0 else [])
                      + (["readonly_host"] if read_only else []) + (["pidns"] if pid_ns else []) + (["landlock"] if lock else [])
                      + (["own_uid"] if own else []) + (group.layers if bounded else []), group=group,
                      runs_as=backend.runs_as(user))
    finally:
        if proc is not None:
            _kill_group(proc.pid)  # at once: the rest of the end may outlive a cancellation (_to_the_end)
        await _to_the_end(_ended(proc, group, folder, own_uid))


@contextlib.asynccontextmanager
async def _own_uid(user: identity.User | None) -> AsyncIterator[tuple[identity.User | None, bool]]:
    """(the user the run's code is, whether that uid is the run's alone): a uid of
    `sandbox.run_as_range` while the run lasts, where one is configured and the gateway switches
    users (tierwise.sandbox.identity.UidPool); else `user` as given. Handed back once the caller's
    block, which kills and waits for the run, has ended. SandboxBusy when every uid is in use."""
    pool = identity.pool()
    if user is None or pool is None:
        yield user, False
        return
    mine = pool.take()
    if mine is None:
        raise SandboxBusy(f"every uid of sandbox.run_as_range ({pool.size}) is in use "
                          "(by this gateway process or another)")
    try:
        yield mine, True
    finally:
        pool.give_back(mine)


@contextlib.asynccontextmanager
async def _started_bwrap(files: dict[str, bytes], entry: str, args: list[str], stdin: bool, limits: SandboxLimits,
                         ro_binds: list[str], audit_hook: bool, python: bool,
                         line_limit: int, conversation: bool = False) -> AsyncIterator[LiveRun]:
    status = backend.status()
    layers = [la for la in status.layers if not (limits.threads and la == "one_task") and not la.startswith("cgroup_")]
    fds: list[int] = []
    try:
        group = cgroup.RunCgroup(limits.memory_mb, limits.work_mb + bwrap.SHM_MB, limits.threads,  # (its /dev/shm)
                                 backend.capacity.max_concurrent)
    except OSError as e:  # it could be made at start: not run without it (a failed check, not a 500)
        cgroup.log.warning("sandbox: the run's cgroup cannot be made: %s", e)
        yield LiveRun(None, [], SandboxResult(None, "", f"sandbox: the run's cgroup cannot be made ({e.strerror}); "
                                                        "not run"))
        return
    proc = None
    own_uid = _own_uid(status.run_as)
    try:
        user, own = await own_uid.__aenter__()
    except BaseException:
        await _to_the_end(group.remove())
        raise
    try:
        fds.append(seccomp_filter.bpf_fd(limits.threads, owns_host_devices=user is None and os.geteuid() == 0))
        placed = []
        for name, data in files.items():
            fd = os.memfd_create(name, os.MFD_CLOEXEC)
            fds.append(fd)
            os.write(fd, data)
            os.lseek(fd, 0, os.SEEK_SET)
            placed.append((fd, name))
        if entry in files:
            entry = f"{bwrap.WORK}/{entry}"
        if not python:
            inner = [entry, *args]
        elif audit_hook:
            inner = [bwrap.layout().python, "-I", "-S", "-c", BOOT, bwrap.WORK, entry, *ro_binds, "--", *args]
        else:
            inner = [bwrap.layout().python, "-I", "-S", entry, *args]
        staging = identity.plan([*bwrap.layout().binds, *ro_binds], user)
        cmd = bwrap.command(seccomp_fd=fds[0], files=placed, work_mb=limits.work_mb, argv=inner, ro_binds=ro_binds)
        try:
            proc = await _spawn(cmd, stdin, limits, cwd="/", pass_fds=fds, group=group, line_limit=line_limit, conversation=conversation,
                                switch=identity.switcher(user, staging))
        except (OSError, subprocess.SubprocessError) as e:
            yield _not_started(e)
            return
        for fd in fds:  # the child has its copies: close ours now, not when the run ends
            os.close(fd)
        fds = []
        yield LiveRun(proc, layers + group.layers + (["audit"] if audit_hook else []) + (["own_uid"] if own else []),
                      group=group, runs_as=backend.runs_as(user))
    finally:
        for fd in fds:
            os.close(fd)
        if proc is not None:
            _kill_group(proc.pid)  # at once: the rest of the end may outlive a cancellation (_to_the_end)
        await _to_the_end(_ended(proc, group, None, own_uid))


async def _ended(proc: asyncio.subprocess.Process | None, group: cgroup.RunCgroup | None, folder: str | None,
                 own_uid: contextlib.AbstractAsyncContextManager[Any]) -> None:
    """The end of a run: its process killed and waited for, its cgroups and folder removed, then its uid handed back
    (every task of the run gone, where a cgroup holds them, before the uid goes to another run)."""
    try:
        if proc is not None:
            await _reap(proc)
        if group is not None:
            await group.remove()
        if folder is not None:
            await weak.remove_folder(folder)
    finally:
        await own_uid.__aexit__(None, None, None)


# The end of a run goes to its end whoever cancels the run, and however often (review33a): cancelled again while it
# waited for the process or the cgroups (anyio's cancel scopes, in which the MCP server's handlers run, cancel at every
# await until the scope is left; a second asyncio cancel does the same once), the run's cgroups were never removed (two
# folders a run), nor the descriptors of its cgroups and its process's pipes closed (2-3 a run: 200 such runs, 400-600
# of the gateway's descriptors, until it could open none and no run started), nor a weak run's folder removed. The run's
# process is killed at once; the rest (the uid of `run_as_range` handed back last) goes on as a task of its own, held
# here until it is done, and the cancellation goes on up.
_ENDING: set[asyncio.Task[None]] = set()


def _ending_done(task: asyncio.Task[None]) -> None:
    _ENDING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        cgroup.log.warning("sandbox: a run's end failed: %r", task.exception())


async def _to_the_end(ending: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(ending)
    _ENDING.add(task)
    task.add_done_callback(_ending_done)
    await asyncio.shield(task)


def _not_started(e: BaseException) -> LiveRun:
    """A run whose process could not be set up between fork and exec (its namespaces: a user's count of them may be
    full; its cgroups, filter, limits) or not executed: a result saying so, not an exception out of run_python."""
    cgroup.log.warning("sandbox: the run's process could not be started: %s", e)
    return LiveRun(None, [], SandboxResult(None, "", "sandbox: the run's process could not be started (its "
                                                     "namespaces, cgroups or limits could not be set up; see the "
                                                     "gateway's log); not run"))


async def _reap(proc: asyncio.subprocess.Process) -> None:
    _kill_group(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


def _limit_child(limits: SandboxLimits, group: cgroup.RunCgroup | None, confine: Callable[[], None] | None,
                 switch: tuple | None) -> None:
    """Between fork and exec: the run's cgroups joined (as root, when the gateway is: the
    cgroup files are root's), the switch to the unprivileged sandbox user (tierwise.sandbox.
    identity; the seccomp filter would refuse its calls), (the weak sandbox) the seccomp filter
    loaded, and the rlimits last: until exec the child still holds every descriptor of the
    gateway, so with RLIMIT_NOFILE set first the join's open failed (EMFILE) in a gateway holding
    64 descriptors, and no run started. System calls only."""
    if group is not None:
        group.join()
    backend.set_core_limit()
    identity.switch(switch)
    if confine is not None:
        confine()
    backend.set_rlimits(limits)


def confined_reader(limits: SandboxLimits) -> Callable[[], None]:
    """Between fork and exec of an interpreter that runs none of a model's code but reads its text with a large C
    component (the compiler of `python_code`, tierwise.verifiers.code): what a weak run gets that needs no folder of
    its own. The switch to the sandbox's user where the gateway is root and can (`backend.weak_run_as`), the seccomp
    filter (no socket, no process, nothing aimed at another PID), Landlock (it reads the system's libraries and the
    interpreter's library folder but for its packages; it writes nothing but the harmless devices), the parent-death
    signal, RLIMIT_CORE 1 and `limits`. It ran as the gateway's user (root) with rlimits alone: a memory-safety bug
    of the parser or compiler (crashes on crafted source are found in every release) made it the one step where a
    model's text met C code with the gateway's full rights: every file root may read or write, the network, every
    process (review29a). Prepared here (blocking: a worker thread), the child only makes system calls."""
    user = backend.weak_run_as()
    switch = identity.switcher(user, identity.plan([weak.prefix()], user)) if user is not None else None
    confine = weak.filter_loader(False, user is None, True)
    lock = landlock.rules([*bwrap.SYSTEM_PATHS, weak.library(), bwrap.interpreter()], None, weak.hidden())
    return functools.partial(_limit_child, limits, None, weak.dying_with(os.getpid(), confine, lock), switch)


async def _spawn(argv: list[str], stdin: bool, limits: SandboxLimits, *, cwd: str, pass_fds: list[int],
                 group: cgroup.RunCgroup | None = None, line_limit: int = 65536, conversation: bool = False,
                 confine: Callable[[], None] | None = None, switch: tuple | None = None) -> asyncio.subprocess.Process:
    try:
        return await _exec(argv, stdin, limits, cwd=cwd, pass_fds=pass_fds, group=group, line_limit=line_limit, conversation=conversation,
                           confine=confine, switch=switch)
    finally:
        if group is not None:
            group.joined()  # (the child has joined, or will not: the descriptors it joined through are closed)


async def _exec(argv: list[str], stdin: bool, limits: SandboxLimits, *, cwd: str, pass_fds: list[int],
                group: cgroup.RunCgroup | None, line_limit: int, conversation: bool, confine: Callable[[], None] | None,
                switch: tuple | None) -> asyncio.subprocess.Process:
    # (its output pipes paced: a run writing a byte at a time woke the gateway's event loop for each; paced_output)
    return await paced_output.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        # (bubblewrap clears its own and sets the run's: bwrap.command; a weak run's home is its folder, `cwd`)
        env={**dict(bwrap.ENVIRONMENT), bwrap.HOME: cwd},
        start_new_session=True,
        pass_fds=pass_fds,
        preexec_fn=functools.partial(_limit_child, limits, group, confine, switch),
        limit=line_limit, conversation=conversation,
    )


async def _read_capped(stream: asyncio.StreamReader | None, cap: int, drain: int | None = None,
                       on_overflow: Callable[[], None] | None = None) -> tuple[bytes, bool]:
    """Read until EOF keeping at most `cap` bytes (draining the rest, so the child never blocks on
    a full pipe); past `drain` bytes read, `on_overflow` is called once (it kills the run)."""
    if stream is None:
        return b"", False
    kept = bytearray()
    truncated, read = False, 0
    while chunk := await stream.read(65536):
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            truncated = True
        read += len(chunk)
        if drain is not None and read > drain and on_overflow is not None:
            on_overflow()
            on_overflow = None
    return bytes(kept), truncated


async def _feed(proc: asyncio.subprocess.Process, data: bytes | None) -> None:
    if data is None or proc.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.close()


def _kill_group(pid: int) -> None:
    # bwrap's --die-with-parent then takes the sandbox's PID 1, and the PID namespace with it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _supervise(proc: asyncio.subprocess.Process, stdin: bytes | None, limits: SandboxLimits,
                     layers: list[str]) -> SandboxResult:
    # stdin is fed concurrently with reading: a child that prints before reading cannot deadlock us.
    # Output past `drain_bytes` ends the run: what it printed is already cut, and the rest is only load.
    cap, drain, kill = limits.output_bytes, max(limits.drain_bytes, limits.output_bytes), \
        functools.partial(_kill_group, proc.pid)
    readers = asyncio.gather(_feed(proc, stdin), _read_capped(proc.stdout, cap, drain, kill),
                             _read_capped(proc.stderr, cap, drain, kill))
    timed_out = False
    # One deadline for the output and the exit: a weak run (no bwrap holding its pipes) that closed stdout and stderr
    # just before the wall clock got a second whole wall clock to live, asleep or spending its CPU (session 28).
    # A run that ends its output near the deadline still has a second to exit.
    deadline = asyncio.get_running_loop().time() + limits.wall_s
    try:
        _, (out, out_cut), (err, err_cut) = await asyncio.wait_for(asyncio.shield(readers), limits.wall_s)
        await asyncio.wait_for(proc.wait(), max(1.0, deadline - asyncio.get_running_loop().time()))
    except TimeoutError:
        timed_out = True
        _kill_group(proc.pid)
        _, (out, out_cut), (err, err_cut) = await readers
        await proc.wait()
    except BaseException:
        _kill_group(proc.pid)  # cancelled (the client went away): the sandbox goes too
        raise
    finally:
        _kill_group(proc.pid)
    rc = proc.returncode
    sig = None
    if rc is not None and rc < 0:
        sig = signal.Signals(-rc).name
    elif rc is not None and rc > 128 and rc - 128 in signal.valid_signals():
        sig = signal.Signals(rc - 128).name  # bwrap exits 128 + the signal that killed the program
    return SandboxResult(rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), timed_out,
                         sig, out_cut or err_cut, layers, threads=limits.threads)
