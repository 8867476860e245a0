"""What the sandbox attack benches share to weigh a run's CPU against the gateway's, and to plant a cgroup folder as
another local user would: one source for rounds 12-14 and review32b (they had copied it from round 12). Not a bench of
its own.

- `SPIN`, a run's program: spin from wall-clock T0 to T1 and print the CPU seconds it got; `spin`, the gateway's own;
- `spin_beside(runs)`: N runs spinning beside the gateway over the same six seconds;
- `plant(folder)`: a cgroup folder made another user's (65534) with the largest `cpu.shares`; `remove_dir(folder)`:
  removed once the kernel lets go of it.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

SPIN = """
import time
T0, T1 = {t0}, {t1}
while time.time() < T0:
    pass
c0 = time.process_time()
while time.time() < T1:
    pass
print(f"{{time.process_time() - c0:.2f}}")
"""


def limits(**kw: Any) -> Any:
    from tierwise.sandbox import SandboxLimits

    return SandboxLimits(**{"wall_s": 30, "cpu_s": 20, "memory_mb": 256, **kw})


def spin(t0: float, t1: float) -> float:
    while time.time() < t0:
        pass
    c0 = time.process_time()
    while time.time() < t1:
        pass
    return time.process_time() - c0


def cpu_of(r: Any) -> float:
    """The CPU seconds a run of SPIN printed (0 when it printed nothing)."""
    return float(r.stdout.strip() or 0)


async def spin_beside(runs: int) -> tuple[float, list[Any]]:
    """(the gateway's CPU seconds, the runs' results): `runs` runs of SPIN started together, the gateway spinning
    beside them over the same six seconds of wall clock (they start 3 s from now: time to spawn)."""
    from tierwise.sandbox import run_python

    t0 = time.time() + 3.0
    t1 = t0 + 6.0
    tasks = [asyncio.create_task(run_python(SPIN.format(t0=t0, t1=t1), limits=limits(), audit_hook=False))
             for _ in range(runs)]
    await asyncio.sleep(1.0)
    own = spin(t0, t1)
    return own, list(await asyncio.gather(*tasks))


def plant(folder: str) -> None:
    """`folder` (an empty cpu cgroup, made) as another user would leave it: `cpu.shares` 262144, owned by 65534."""
    with open(os.path.join(folder, "cpu.shares"), "w") as fh:
        fh.write("262144")  # (the planter's choice: their own file)
    for name in (".", *os.listdir(folder)):
        os.chown(os.path.join(folder, name), 65534, 65534)


def remove_dir(folder: str) -> None:
    """Remove a cgroup folder, waiting up to 5 s for its last task to leave."""
    for _ in range(100):
        try:
            os.rmdir(folder)
            return
        except OSError:
            time.sleep(0.05)
