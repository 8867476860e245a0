"""Session 34's attack round on the sandbox (bench/RESULTS.md, "Sandbox round 15"). OS layer alone (no audit hook);
each test failed before its fix."""

from __future__ import annotations

import os

import pytest

from tests.security.sandbox_programs import FLOCK_RECEIVER, FLOCK_SENDER
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, cgroup, runner

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)
WAIT = "import sys\nprint('up', flush=True)\nsys.stdin.readline()"


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (children first), read from /proc."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _session_and_nice(pid: int) -> tuple[int, int]:
    """(the session id, the nice) of the process `pid`, as every Linux kernel shows them in /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[3]), int(fields[16])


def _autogroup(pid: int) -> tuple[str, int] | None:
    """(the autogroup's name, its nice) of the process `pid`; None without autogroup."""
    try:
        with open(f"/proc/{pid}/autogroup") as fh:
            name, _, nice = fh.read().split()
        return name, int(nice)
    except (OSError, ValueError):
        return None


def _without_the_cpu_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs as where no shared cpu cgroup holds them (cgroup v2, where it is not made), 4 at a time."""
    from tierwise.sandbox import backend

    monkeypatch.setattr(cgroup, "runs_cpu", lambda: None)  # (as on cgroup v2: not made)
    monkeypatch.setattr(backend, "capacity", backend.Capacity(4))


async def test_a_bubblewrap_run_without_the_shared_cpu_cgroup_has_no_autogroup_of_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no shared cpu cgroup holds the runs and the gateway is in the root cgroup with autogroup on (cgroup v2
    where it is not made), a run's nice counts for nothing against the gateway: the scheduler weighs sessions, and
    bubblewrap's `--new-session` put the program in a fresh autogroup at nice 0 after the priority the gateway set, so
    4 runs took 3.87-4.16x the gateway's CPU (round 14, "not reached"). Now the whole bubblewrap session is the one the
    gateway started and lowered: every process of the run is in it, at `runs_nice(max_concurrent)`."""
    _without_the_cpu_cgroup(monkeypatch)
    async with runner.open_python(WAIT, limits=LIMITS, audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None and live.proc.stdin is not None, live.refused
        assert await live.proc.stdout.readline() == b"up\n"
        below = _descendants(live.proc.pid)
        pids = (live.proc.pid, *below)
        sessions = {pid: _session_and_nice(pid) for pid in pids}
        groups = {pid: _autogroup(pid) for pid in pids}
        live.proc.stdin.write(b"done\n")
    assert below, "no process below bubblewrap"
    # One session, the one the runner started for bubblewrap and lowered (a kernel with autogroup weighs it as one)...
    assert {sid for sid, _ in sessions.values()} == {live.proc.pid}, sessions
    # (lowered from the gateway's own nice: a test run under `nice -n 5` sees 12)
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert sessions[below[-1]][1] == min(19, own + cgroup.runs_nice(4)) and cgroup.runs_nice(4) == 7, (own, sessions)
    # ...and where the kernel has autogroup (not every kernel is built with it), that session's group is the lowered one.
    if groups[live.proc.pid] is not None:
        assert set(groups.values()) == {groups[live.proc.pid]}, groups
        assert groups[below[-1]] == (groups[live.proc.pid][0], 7), groups


THREADS = SandboxLimits(wall_s=40, cpu_s=20, memory_mb=256, threads=True)


async def test_runs_with_threads_pass_nothing_through_flock(landlock_alone: None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With `threads=True` flock stayed the kernel's on any file a run may open, read-only ones included: two runs
    passed 8 of 8 bits through LOCK_EX on os.py (bench/sandbox_attack_round15.py --only flock). It takes no lock now:
    the receiver sees none whatever the sender does (0 with no lock taken until session 35; refused, ENOSYS, since:
    `test_sandbox_round16.py`)."""
    import asyncio
    import time

    from tierwise.sandbox import backend, run_python

    monkeypatch.setattr(backend, "capacity", backend.Capacity(2))
    start = time.time() + 4
    send = asyncio.create_task(run_python(FLOCK_SENDER.format(start=start), limits=THREADS, audit_hook=False))
    got = await run_python(FLOCK_RECEIVER.format(start=start), limits=THREADS, audit_hook=False)
    sent = await send
    assert sent.returncode == 0 and got.returncode == 0, (sent.summary(), got.summary())
    assert got.stdout.strip() == "--------", got.stdout


SETSID = """
import os, sys
try:
    os.setsid()
    print("setsid", flush=True)
except OSError as e:
    print("refused", e.errno, flush=True)
sys.stdin.readline()
"""


async def test_a_run_cannot_leave_the_lowered_session(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The session is what autogroup weighs: a run that makes one of its own (`setsid`) is a fresh autogroup at nice 0,
    whatever the runner lowered. A process that leads its session already gets EPERM; so does a run now."""
    _without_the_cpu_cgroup(monkeypatch)
    async with runner.open_python(SETSID, limits=LIMITS, audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None and live.proc.stdin is not None, live.refused
        said = (await live.proc.stdout.readline()).decode().strip()
        pids = (live.proc.pid, *_descendants(live.proc.pid))
        sessions = {pid: _session_and_nice(pid) for pid in pids}
        groups = {pid: _autogroup(pid) for pid in pids}
        live.proc.stdin.write(b"done\n")
    assert said == "refused 1", said
    assert len({sid for sid, _ in sessions.values()}) == 1, sessions  # no process of the run in a session of its own
    assert {nice for _, nice in filter(None, groups.values())} <= {7}, groups

