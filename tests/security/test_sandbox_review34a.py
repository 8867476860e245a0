"""review34a: sandbox round 15 attacked (bench/RESULTS.md, "Sandbox review 34a"). OS layer alone (no audit hook);
each test failed before its fix."""

from __future__ import annotations

import asyncio

import pytest

from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, paced_output, run_python

BYTES = 1500
TRICKLE = f"""
import os, time
for _ in range({BYTES}):
    os.write(1, b"x")
    time.sleep(0.002)
"""


def _small_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the gateway's reads of a run's pipes smaller than `paced_output.SMALL`, as they come."""
    reads: list[int] = []
    feed = asyncio.StreamReader.feed_data

    def counted(self: asyncio.StreamReader, data: bytes) -> None:
        if len(data) < paced_output.SMALL:
            reads.append(len(data))
        feed(self, data)

    monkeypatch.setattr(asyncio.StreamReader, "feed_data", counted)
    return reads


async def test_a_run_writing_a_byte_at_a_time_does_not_wake_the_gateway_for_each(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Each write of a run that found the gateway waiting was one read of the gateway's event loop: a run writing a
    byte every 2 ms got ~one read a byte (4 such runs took 35-39% of a core of the gateway's CPU, at its priority,
    within `output_bytes`). The gateway now reads a pipe at most BURST + RATE x seconds times in small reads (a bucket
    of reads, not a timing threshold: the bound grows with the time the run took); every byte still arrives."""
    reads = _small_reads(monkeypatch)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await run_python(TRICKLE, limits=SandboxLimits(wall_s=120, cpu_s=20, memory_mb=256), audit_hook=False)
    took = loop.time() - start
    assert result.returncode == 0 and result.stdout == "x" * BYTES, result.summary()
    assert sum(reads) == BYTES
    assert len(reads) <= paced_output.BURST + paced_output.RATE * took + 2, (len(reads), round(took, 2))


IOPRIO = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
best_effort_0 = 2 << 13  # IOPRIO_CLASS_BE, level 0: the highest best-effort priority
rc = libc.syscall(251, 1, 0, best_effort_0)  # ioprio_set(IOPRIO_WHO_PROCESS, itself, ...)
print(rc, ctypes.get_errno() if rc else 0, libc.syscall(252, 1, 0))  # ... and ioprio_get
"""


async def test_a_run_cannot_raise_its_io_priority_above_the_gateways(mode: str) -> None:  # noqa: F811
    """A run's I/O priority follows its nice (best-effort level (nice + 20) / 5: 4 for a gateway at nice 0, 5 or lower
    for a run the runner niced down); `ioprio_set` of itself to best-effort 0 was accepted in every mode, above the
    gateway's (what BFQ weighs). Refused now, as it was already when aimed at another process or a group."""
    import errno
    import platform

    from tests.harness import unavailable

    if platform.machine() != "x86_64":
        unavailable("the system call numbers here are x86-64's")
    result = await run_python(IOPRIO, limits=SandboxLimits(wall_s=30), audit_hook=False)
    assert result.returncode == 0, result.summary()
    rc, err, now = map(int, result.stdout.split())
    assert (rc, err) == (-1, errno.EPERM), result.stdout
    assert now != 2 << 13, result.stdout


async def test_the_split_checkers_conversation_is_not_paced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The split checker relays one line at a time between two runs, as many as the operator's tests make calls: with
    every small read paced, 2,000 calls took 19.7 s instead of 0.96 s (past a check's wall clock). A line the gateway
    waits for is not counted: 300 calls (past BURST) and no pipe of either run is ever paused."""
    from tierwise.sandbox import backend
    from tierwise.verifiers import checker

    paused = []
    resume = paced_output.PacedProtocol._resume

    def counted(self: paced_output.PacedProtocol, fd: int) -> None:
        paused.append(fd)
        resume(self, fd)

    monkeypatch.setattr(paced_output.PacedProtocol, "_resume", counted)
    monkeypatch.setattr(backend, "capacity", backend.Capacity(2))
    result = await checker.check("def f(x):\n    return x\n", "for i in range(300):\n    assert f(i) == i\n",
                                 SandboxLimits(wall_s=60, cpu_s=20))
    assert result.passed, result.reason
    assert paused == []


async def test_a_conversation_is_paced_where_nothing_was_asked(mode: str,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """In a conversation only a whole line the gateway waits for is free: a run trickling bytes on its stdout, read
    by the gateway as they come (a reader always waiting, as the checker's for an answer) but never ending a line, is
    paced like any run's output."""
    from tierwise.sandbox import runner

    reads = _small_reads(monkeypatch)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with runner.open_python(TRICKLE, limits=SandboxLimits(wall_s=120, cpu_s=20, memory_mb=256),
                                  audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None, live.refused
        got = await live.proc.stdout.read()
    took = loop.time() - start
    assert got == b"x" * BYTES
    assert len(reads) <= paced_output.BURST + paced_output.RATE * took + 2, (len(reads), round(took, 2))
