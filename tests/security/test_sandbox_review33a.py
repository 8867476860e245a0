"""review33a's attack on sandbox round 14 (bench/RESULTS.md, "Review of sandbox14"). OS layer alone (no audit hook);
each test failed before its fix."""

from __future__ import annotations

import asyncio
import glob
import os

import anyio
import pytest

from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, cgroup, run_python, runner

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)
UP = "import time\nprint('up', flush=True)\ntime.sleep(20)"


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _cgroups_of_this_process() -> list[str]:
    """The runs' own cgroups this process made and has not removed (not the shared `-runs` cpu cgroup)."""
    parents = {place.parent for place in cgroup.places()[0]}
    return [f for parent in parents for f in glob.glob(os.path.join(parent, f"tierwise-{os.getpid()}-*"))
            if not f.endswith("-runs")]


def _run_folders() -> set[str]:
    return set(glob.glob("/tmp/tierwise-sandbox-*") + glob.glob("/dev/shm/tierwise-sandbox-*"))


async def _cancelled_at_every_await() -> None:
    """A run ended by an anyio cancel scope (as the MCP server's handlers are when their client cancels): cancelled
    while it runs, and again at every await of its end until the scope is left."""
    with anyio.CancelScope() as scope:
        async with runner.open_python(UP, limits=LIMITS, audit_hook=False) as live:
            assert live.proc is not None and live.proc.stdout is not None, live.refused
            assert await live.proc.stdout.readline() == b"up\n"
            scope.cancel()
            await anyio.sleep(30)
    assert scope.cancelled_caught


async def test_a_run_cancelled_at_every_await_leaves_nothing_behind(mode: str) -> None:  # noqa: F811
    """The end of a run (its process waited for, its cgroups and folder removed) was cut short by a second
    cancellation: each such run left its two cgroups, up to 3 of the gateway's descriptors (until it could open none)
    and a weak run's folder. Now the end goes on to its end and the cancellation goes on up; with `run_as_range` the
    uid still goes back only after it (the next run gets one)."""
    if os.geteuid() == 0:
        sandbox.configure(allow_weak=mode == "weak", max_concurrent=2, run_as_range="61184-61185")
    await run_python("pass", limits=LIMITS, audit_hook=False)
    descriptors, folders = _descriptors(), _run_folders()
    for _ in range(3):
        await _cancelled_at_every_await()
    left: tuple[object, ...] = ()
    for _ in range(200):  # (the end goes on after the cancellation: a moment)
        left = (_descriptors() - descriptors, _cgroups_of_this_process(), _run_folders() - folders)
        if left == (0, [], set()):
            break
        await asyncio.sleep(0.05)
    assert left == (0, [], set()), left
    r = await run_python("print('next')", limits=LIMITS, audit_hook=False)
    assert r.stdout == "next\n", r.summary()  # (with run_as_range: a uid was free)
