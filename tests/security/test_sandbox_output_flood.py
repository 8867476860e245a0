"""Output past `drain_bytes` ends the run (past `output_bytes` it is read and thrown away). The
gateway used to drain a flood to the end of the wall clock (its output already cut): 8.4 s of the
gateway's CPU in a 10 s run, 9.7 s for an answer flooding stderr in a split check, and the sandbox
slot held all along. Each attack here writes past the drain limit and then waits for ever: only
the kill there ends it before the wall clock does."""

from __future__ import annotations

import pytest

from tierwise.sandbox import SandboxLimits, run_python
from tierwise.verifiers import checker

LIMITS = SandboxLimits(wall_s=30, cpu_s=10, memory_mb=256, output_bytes=10_000, drain_bytes=40_000)
FLOOD_THEN_WAIT = "import os, time\nos.write({fd}, b'x' * 50_000)\ntime.sleep(3600)\n"


@pytest.mark.parametrize("fd", [1, 2], ids=["stdout", "stderr"])
async def test_output_past_the_cap_ends_the_run(fd: int) -> None:
    r = await run_python(FLOOD_THEN_WAIT.format(fd=fd), limits=LIMITS, audit_hook=False)
    assert not r.timed_out, "the run went on after its output passed the cap"
    assert r.output_truncated
    assert len(r.stdout) <= 10_000 and len(r.stderr) <= 10_000
    assert r.summary().startswith("killed: output limit"), r.summary()


async def test_an_answer_flooding_stderr_ends_the_check() -> None:
    answer = FLOOD_THEN_WAIT.format(fd=2) + "def add(a, b):\n    return a + b\n"
    r = await checker.check(answer, "assert add(2, 3) == 5", LIMITS)
    assert not r.passed
    assert r.reason.startswith("killed: output limit (the answer"), r.reason


async def test_output_under_the_drain_limit_is_cut_not_killed() -> None:
    r = await run_python("import sys\nprint('y' * 9_000)\nprint('e' * 30_000, file=sys.stderr)\n", limits=LIMITS)
    assert r.ok and r.output_truncated, r.summary()
    assert r.stdout.strip() == "y" * 9_000 and r.stderr == "e" * 10_000
