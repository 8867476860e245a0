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


async def test_a_run_writing_a_byte_at_a_time_does_not_wake_the_gateway_for_each(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Each write of a run that found the gateway waiting was one read of the gateway's event loop: a run writing a
    byte every 2 ms got ~one read a byte (4 such runs took 35-39% of a core of the gateway's CPU, at its priority,
    within `output_bytes`). The gateway now reads a pipe at most BURST + RATE x seconds times in small reads (a bucket
    of reads, not a timing threshold: the bound grows with the time the run took); every byte still arrives."""
    reads = []
    feed = asyncio.StreamReader.feed_data

    def counted(self: asyncio.StreamReader, data: bytes) -> None:
        if len(data) < paced_output.SMALL:
            reads.append(len(data))
        feed(self, data)

    monkeypatch.setattr(asyncio.StreamReader, "feed_data", counted)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await run_python(TRICKLE, limits=SandboxLimits(wall_s=120, cpu_s=20, memory_mb=256), audit_hook=False)
    took = loop.time() - start
    assert result.returncode == 0 and result.stdout == "x" * BYTES, result.summary()
    assert sum(reads) == BYTES
    assert len(reads) <= paced_output.BURST + paced_output.RATE * took + 2, (len(reads), round(took, 2))
