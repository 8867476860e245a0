"""review30b's probes of the clean-up of a weak run's folder (bench/RESULTS.md "Sandbox clean-up review"). Not a test:
it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_review30b.py [--levels N]

Landlock alone (a root gateway without CAP_SYS_ADMIN: the run's folder is on the host's /dev/shm). `deep`: a run makes
a chain of folders, one inside the other, until its memory cgroup or its wall clock stops it (or `--levels`); printed:
the depth, then the CPU the clean-up took in the gateway and in the process of its own (past cleanup.ENTRIES entries)
and who that process ran as.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import resource
import time

DEEP = """
import os
fd, n = os.open(".", os.O_RDONLY | os.O_DIRECTORY), 0
try:
    while n < LEVELS:
        os.mkdir("d", dir_fd=fd)
        sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd, n = sub, n + 1
        if n % 10000 == 0:
            print("LEVELS", n, flush=True)
except OSError as e:
    print("stopped:", e.strerror, flush=True)
print("LEVELS", n, flush=True)
"""


async def deep(levels: int) -> str:
    from tierwise import sandbox
    from tierwise.sandbox import SandboxLimits, backend, cleanup, run_python, weak
    from tierwise.sandbox import bwrap as bwrap_mod

    bwrap_mod.bwrap_path = lambda: None  # type: ignore[assignment]
    sandbox.status.cache_clear()
    sandbox.configure(allow_weak=True)
    backend.weak_read_only_host = functools.cache(lambda: False)  # type: ignore[assignment]
    real, seen, users = weak.remove_tree, [], []
    owner = getattr(cleanup, "_process_of_owner", None)  # (review30b's; before it, the gateway's own uid)

    def timed(path: str) -> bool:
        cpu, wall = time.process_time(), time.perf_counter()
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        gone = real(path)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        seen.append(f"clean-up {time.perf_counter() - wall:.2f} s, gateway CPU {time.process_time() - cpu:.2f} s, "
                    f"its process's CPU {after.ru_utime + after.ru_stime - kids.ru_utime - kids.ru_stime:.2f} s, "
                    f"gone {gone}")
        return gone

    def process_of_owner(path: str) -> tuple[str, object]:
        python, switch = owner(path)  # type: ignore[misc]
        users.append(f"uid {switch.args[0][2].uid}" if switch is not None else f"uid {os.geteuid()}")
        return python, switch

    weak.remove_tree = timed  # type: ignore[assignment]
    if owner is not None:
        cleanup._process_of_owner = process_of_owner  # type: ignore[attr-defined]
    else:
        users.append(f"uid {os.geteuid()} (the gateway's)")
    r = await run_python(f"LEVELS = {levels}\n" + DEEP, limits=SandboxLimits(wall_s=120, cpu_s=60, memory_mb=256),
                         audit_hook=False)
    said = [*r.stdout.strip().splitlines()[-2:], f"rc {r.returncode} signal {r.signal} timed out {r.timed_out}", r.stderr[-200:]]
    return f"{' / '.join(said)} [layers: {', '.join(r.layers)}]; {'; '.join(seen)}; its process as {users}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=10**7)
    print(f"[landlock] deep: {asyncio.run(deep(parser.parse_args().levels))}", flush=True)
