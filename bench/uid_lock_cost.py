"""What a run pays for its `sandbox.run_as_range` uid lock (flock per uid, shared by every gateway process):
the take + give-back of a uid with the lock and without, beside one bubblewrap run. Root only.

    PYTHONPATH=src .venv/bin/python bench/uid_lock_cost.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time

from tierwise.sandbox import SandboxLimits, backend, identity, runner


def per_take(pool: identity.UidPool, n: int = 20000) -> float:
    t = time.perf_counter()
    for _ in range(n):
        user = pool.take()
        assert user is not None
        pool.give_back(user)
    return (time.perf_counter() - t) / n


async def per_run(n: int = 10) -> float:
    t = time.perf_counter()
    for _ in range(n):
        r = await runner.run_python("pass", limits=SandboxLimits(wall_s=30))
        assert r.ok, r
    return (time.perf_counter() - t) / n


def main() -> None:
    locked = per_take(identity.UidPool(61184, 61199, lock_dir=tempfile.mkdtemp()))
    plain = per_take(identity.UidPool(61184, 61199))
    backend.configure(run_as_range="61184-61199")
    run = asyncio.run(per_run())
    print(f"take+give_back: flock {locked * 1e6:.1f} us, in-process {plain * 1e6:.2f} us; one bwrap run "
          f"{run * 1e3:.1f} ms; flock/run = {locked / run:.5f}")


if __name__ == "__main__":
    main()
