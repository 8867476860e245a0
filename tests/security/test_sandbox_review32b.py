"""Review of sandbox13 as an attacker (bench/RESULTS.md, "Review of sandbox13 (session 32, review32b)"). OS layer alone
(no audit hook); each test failed before its fix but the priority limits' (see its docstring)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tests.security.test_sandbox_review31a import _cpu_cgroup
from tierwise.sandbox import SandboxLimits, cgroup, run_python, runner

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)
SRC = str(Path(cgroup.__file__).resolve().parents[2])

NOTIFICATION_PIPE = attempt_prelude("GRANTED") + """
import os
attempt("notification", lambda: os.pipe2(0x80))  # O_NOTIFICATION_PIPE
attempt("pipe", lambda: os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK))
"""


def _no_notification_pipe(stdout: str) -> None:
    # EPERM: the filter's answer (the kernel's own: ENOPKG without CONFIG_WATCH_QUEUE, as here; a pipe with it)
    assert "notification refused 1" in stdout, stdout
    assert "pipe GRANTED" in stdout, stdout


async def test_a_run_makes_no_notification_pipe(mode: str) -> None:  # noqa: F811
    """`pipe2(O_NOTIFICATION_PIPE)` (the kernel's watch queue, behind CVE-2022-0995) was left to the kernel: a pipe
    where it has CONFIG_WATCH_QUEUE (ENOPKG on this machine's). Refused by the filter now; other pipes stay."""
    r = await run_python(NOTIFICATION_PIPE, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _no_notification_pipe(r.stdout)


async def test_a_run_under_landlock_alone_makes_no_notification_pipe(landlock_alone: None) -> None:
    """The same with the host in sight (no mount namespace)."""
    r = await run_python(NOTIFICATION_PIPE, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    _no_notification_pipe(r.stdout)


PRIORITY = """
import resource
print(resource.getrlimit(resource.RLIMIT_NICE), resource.getrlimit(resource.RLIMIT_RTPRIO))
"""


async def test_a_run_may_not_raise_its_priority(mode: str) -> None:  # noqa: F811
    """RLIMIT_NICE and RLIMIT_RTPRIO were the gateway's: one started with `LimitRTPRIO=` handed every run SCHED_FIFO.
    Each run has (0, 0) for both. (Not seen failing here: this machine's gateway has (0, 0) and no CAP_SYS_RESOURCE
    to raise them; lowering needs no privilege.)"""
    r = await run_python(PRIORITY, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    assert r.stdout.split("\n")[0] == "(0, 0) (0, 0)", r.stdout


def _cpu_parent() -> str:
    parent = cgroup._cpu_parent(os.getpid())
    if parent is None or os.geteuid() != 0:
        unavailable("no cgroup v1 cpu hierarchy this process may make folders in as root (docs/security/sandbox.md)")
    return parent


UP = "import time\nprint('up', flush=True)\ntime.sleep(20)"


async def _run_in_a_planted_group(parent: str) -> tuple[str, str | None]:
    """In a process group of its own, with its runs' cgroup made first and handed to another user (65534) as that
    user's own mkdir would leave it: the planted folder and the cpu cgroup a run then joins."""
    os.setpgid(0, 0)
    planted = os.path.join(parent, f"tierwise-{os.getpgrp()}-runs")
    os.mkdir(planted)
    try:
        for name in (".", *os.listdir(planted)):
            os.chown(os.path.join(planted, name), 65534, 65534)
        async with runner.open_python(UP, limits=LIMITS, audit_hook=False) as live:
            assert live.proc is not None and live.proc.stdout is not None, live.refused
            assert await live.proc.stdout.readline() == b"up\n"
            return planted, _cpu_cgroup(live.proc.pid)
    finally:
        os.rmdir(planted)


def _planted(said: multiprocessing.connection.Connection, parent: str) -> None:
    said.send(asyncio.run(_run_in_a_planted_group(parent)))


@pytest.mark.parametrize("mode", ["bwrap"], indirect=True)
async def test_a_root_gateway_joins_no_runs_cgroup_another_user_made(mode: str) -> None:  # noqa: F811
    """The runs' cpu cgroup has a name anyone can predict (`tierwise-<pgid>-runs`); a user who may make folders in the
    gateway's cpu cgroup (delegated to them, or group-writable) made it first, and a root gateway, to which every file
    is writable, joined its runs to it: that user set their weight and read their PIDs. Joined none now (its folder and
    `cgroup.procs` are another user's). A forked process plays the gateway, in a process group of its own."""
    parent = _cpu_parent()
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    gateway = multiprocessing.get_context("fork").Process(target=_planted, args=(theirs, parent))
    gateway.start()
    try:
        planted, joined = await asyncio.wait_for(asyncio.to_thread(ours.recv), 60)
    finally:
        await asyncio.to_thread(gateway.join, 60)
        if gateway.is_alive():
            gateway.kill()
    assert gateway.exitcode == 0, gateway.exitcode
    assert joined is not None and joined != "/" + os.path.relpath(planted, parent) and not joined.endswith("-runs"), \
        (planted, joined)


# A gateway whose process group's leader is not tierwise and is gone (a shell script that started it in the
# background and exited, a supervisor's wrapper): the leader forks the gateway, which makes its runs' cgroup, and exits.
ORPHANED_GROUP = """
import os, sys, time
from tierwise.sandbox import cgroup
os.setpgid(0, 0)
if os.fork() == 0:
    print(cgroup.runs_cpu(), flush=True)
    time.sleep(60)
os._exit(0)
"""


def test_the_sweep_keeps_the_runs_cgroup_of_a_live_group_whose_leader_is_gone() -> None:
    """The runs' cpu cgroup is a process group's (`tierwise-<pgid>-runs`), but another gateway's sweep took it for a
    dead one when no process had the group's number for its PID: the leader gone, the gateway alive in the group, its
    cgroup was removed whenever no run was in it (and a run between its check and its join failed to start). Kept
    while any process of the group lives."""
    parent = _cpu_parent()
    leader = subprocess.Popen([sys.executable, "-c", ORPHANED_GROUP], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": SRC})
    assert leader.stdout is not None
    folder = leader.stdout.readline().strip()
    leader.wait(30)  # (gone: only the gateway is left in its group)
    try:
        assert folder == os.path.join(parent, f"tierwise-{leader.pid}-runs"), folder
        cgroup._sweep(parent)
        assert os.path.isdir(folder)
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.stdout.close()
        for _ in range(100):  # (its last process takes a moment to go)
            try:
                os.rmdir(folder)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


def test_the_sweep_passes_over_names_that_are_no_pid(tmp_path: Path) -> None:
    """A folder named `tierwise-²-1` (a digit to str.isdigit, not to int) or with a number past any PID raised out of
    the sweep, and so out of every run's start, until it was gone. Passed over now."""
    for name in ("tierwise-²-1", "tierwise-99999999999999999999-runs", "tierwise-4294967296-runs"):
        (tmp_path / name).mkdir()
    cgroup._sweep(str(tmp_path))
    assert len(list(tmp_path.iterdir())) == 3
