"""Session 36's sandbox round (bench/RESULTS.md "Sandbox round 17"): what a run learns of PIDs, what the weak run's PID
namespace costs, how many threads a threaded run starts. Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_round17.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

- `pids`: the run's getpid, getppid, a thread's id and F_GETLK's holder of this process's shared lock on os.py.
- `cost` (weak and bwrap): the processes below the gateway during a run and their own anonymous memory (Pss_Anon),
  then 30 runs of `print(1)`: median wall and median CPU of the reaped processes.
- `threads`: sleeping threads a `threads=True` run starts at `memory_mb` 512 with the default stack, and at 256 with
  1 MB stacks.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)
from tests.security.sandbox_programs import processes_below, threads_program  # noqa: E402 (the test's)

PIDS = """
import fcntl, os, struct, threading
ids = []
t = threading.Thread(target=lambda: ids.append(threading.get_native_id()))
t.start()
t.join()
fd = os.open(os.__file__, os.O_RDONLY)
holder = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)))[4]
print("getpid", os.getpid(), "getppid", os.getppid(), "thread", ids[0], "F_GETLK holder", holder)
"""

async def _pids() -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    fd = os.open(os.path.realpath(os.__file__), os.O_RDONLY)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        r = await run_python(PIDS, limits=SandboxLimits(wall_s=30, threads=True), audit_hook=False)
    finally:
        os.close(fd)
    return f"gateway {os.getpid()}: {r.stdout.strip() or r.summary()} [{', '.join(r.layers)}]"


def _anon_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith("Pss_Anon"))
    except (OSError, StopIteration):
        return 0


async def _cost() -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    await run_python("print(1)", audit_hook=False)  # (the probes, once)
    run = asyncio.create_task(run_python("import time\ntime.sleep(3)", limits=SandboxLimits(wall_s=10),
                                         audit_hook=False))
    await asyncio.sleep(1.5)
    procs = processes_below(os.getpid())
    memory = [_anon_kb(p) for p in procs]
    await run
    walls, cpus = [], []
    for _ in range(30):
        start, before = time.perf_counter(), os.times()
        r = await run_python("print(1)", audit_hook=False)
        after = os.times()
        assert r.ok, r.stderr
        walls.append(time.perf_counter() - start)
        cpus.append(after.children_user + after.children_system - before.children_user - before.children_system)
    return (f"{len(procs)} processes below the gateway during a run, Pss_Anon {memory} kB; 30 runs: wall median "
            f"{statistics.median(walls) * 1000:.0f} ms, CPU median {statistics.median(cpus) * 1000:.0f} ms")


async def _threads() -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    said = []
    for memory, stack in ((512, 0), (256, 1 << 20)):
        r = await run_python(threads_program(64, stack, sleep_s=3), audit_hook=False,
                             limits=SandboxLimits(wall_s=30, memory_mb=memory, threads=True))
        started = r.stdout.strip().rpartition("STARTED ")[2] if "STARTED " in r.stdout else r.summary()
        said.append(f"memory_mb {memory}, stack {stack or 'default'}: {started} of 64 started")
    return "; ".join(said)


ATTACKS = {"pids": _pids, "cost": _cost, "threads": _threads}

if __name__ == "__main__":
    modes, only = command_line(__doc__ or "", ATTACKS)
    asyncio.run(run_attacks(modes, only, ATTACKS))
