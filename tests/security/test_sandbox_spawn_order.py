"""Between fork and exec of a run, the gateway's child joins the run's cgroup (it opens the
cgroup's `cgroup.procs`) before it takes the run's limits. The other way round, with the gateway
holding descriptors 0..63 (64 connections and files: any busy gateway), the open after
RLIMIT_NOFILE = `open_files` (64) failed with EMFILE (the child still has every descriptor of the
gateway until exec), so no run started: `could not check (SubprocessError)` for every code check."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.harness import unavailable
from tierwise.sandbox import SandboxLimits, cgroup, run_python

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=128, open_files=64)


@pytest.fixture
def busy_gateway() -> Iterator[None]:
    """Every descriptor number below 100 taken, as in a gateway with many connections."""
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(100)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)


async def test_a_gateway_holding_many_descriptors_still_starts_runs(busy_gateway: None) -> None:
    if not cgroup.places()[0]:
        unavailable("a cgroup per run (nothing is opened between fork and exec without one)")
    r = await run_python("import os\nprint('ran', sorted(os.listdir('/work')))", limits=LIMITS, audit_hook=False)
    assert r.ok and r.stdout.strip() == "ran ['main.py']", r.summary()
