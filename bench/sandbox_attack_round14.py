"""Session 33's sandbox attack round (bench/RESULTS.md "Sandbox round 14"): what a hostile run, or a local user, does.
Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round14.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

Modes as bench/sandbox_attack_round11.py's. Attacks:
- `swap` (bwrap only): a gateway in a process group of its own; between the check of its runs' cpu cgroup
  (`tierwise-<pgid>-runs`) and the run's join, a user who may make folders in the gateway's cpu cgroup swaps the empty
  folder for one of their own (65534's here) with `cpu.shares` 262144; one run spins beside the gateway's spin, 6 s:
  which cgroup it joined and its CPU / the gateway's.
- `counters`: a run samples `sysinfo` (free memory, task count) and `statvfs` (free blocks of the host's disk, through
  the standard library's folder, and of its own folder) every 50 ms for 8 s while the host allocates and touches 1 GB
  and writes a 200 MB file, then while another run writes 15 MB in its own folder: the largest drops it saw.
- `locks`: POSIX record locks (`lockf`, 1 byte every other byte, on F files of its folder) until its CPU limit: how
  many, the kernel's `file_lock_cache` at the peak (/proc/slabinfo), and the run's memory cgroup (v1
  `memory.max_usage_in_bytes`); over `cpu_s` 2/5/10 with 56 files and F = 8/56 at `cpu_s` 5.
- `share`: N runs (1, 2, 4; weak: 4) spin beside the gateway's own spin over the same 6 s: all runs' CPU / the
  gateway's, with the runs' shared cpu cgroup, with it off (as on cgroup v2, where it is not made), and with it off and
  the gateway in a v1 cpu cgroup of its own (as a service's cgroup with no cpu controller below it: the gateway's and
  the runs' tasks weighed one by one, no autogroup).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)
from bench.sandbox_attack_round13 import _slab  # noqa: E402
from bench.sandbox_spin import cpu_of, limits, plant, remove_dir, spin_beside  # noqa: E402

# ---- swap ----------------------------------------------------------------------------------------------------------

def _swap_gateway(said: multiprocessing.connection.Connection) -> None:
    from tierwise.sandbox import cgroup, run_python, runner

    os.setpgid(0, 0)
    real = runner._spawn
    swapped: list[str] = []

    async def spawn(*args: Any, group: Any = None, **kwargs: Any) -> Any:
        if group is not None and group.cpu is not None and not swapped:
            folder = group.cpu
            os.rmdir(folder)
            os.mkdir(folder)
            plant(folder)
            swapped.append(folder)
        return await real(*args, group=group, **kwargs)

    async def race() -> tuple[float, str]:
        await run_python("pass", limits=limits())
        runner._spawn = spawn  # type: ignore[assignment]
        own, [r] = await spin_beside(1)
        got = r.stdout.strip()
        if not got:
            return own, f"did not run ({r.summary()})"
        return own, f"the run {float(got):.2f} s: {float(got) / own:.2f}x the gateway's [layers: {', '.join(r.layers)}]"

    try:
        own, run = asyncio.run(race())
        said.send(f"swapped {swapped[0].rsplit('/', 1)[-1] if swapped else 'nothing'}; gateway {own:.2f} s CPU, {run}")
    finally:
        for folder in swapped:
            remove_dir(folder)
        del cgroup


async def _swap() -> str:
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    gateway = multiprocessing.get_context("fork").Process(target=_swap_gateway, args=(theirs,))
    gateway.start()
    said = await asyncio.to_thread(ours.recv)
    await asyncio.to_thread(gateway.join)
    return str(said)


# ---- counters ------------------------------------------------------------------------------------------------------

WATCH = """
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
info = (ctypes.c_ulong * 16)()
def sysinfo():
    if libc.syscall(99, info) != 0:
        raise OSError(ctypes.get_errno(), "sysinfo")
    return info[5] * (info[13] & 0xFFFFFFFF), (info[10] & 0xFFFF)  # freeram * mem_unit, procs
def free(path):
    s = os.statvfs(path)
    return s.f_bfree * s.f_frsize
probes = {"sysinfo free RAM": lambda: sysinfo()[0], "sysinfo tasks": lambda: sysinfo()[1],
          "statvfs host disk": lambda: free(os.path.dirname(os.__file__)), "statvfs own folder": lambda: free(".")}
first, low, high = {}, {}, {}
for name, probe in probes.items():
    try:
        first[name] = low[name] = high[name] = probe()
    except OSError as e:
        print(name, "refused:", e.strerror)
end = time.time() + 8
while time.time() < end:
    for name in first:
        v = probes[name]()
        low[name], high[name] = min(low[name], v), max(high[name], v)
    time.sleep(0.05)
for name in first:
    unit = 1 if "tasks" in name else 1 << 20
    print(f"{name}: drop {(first[name] - low[name]) // unit}, rise {(high[name] - first[name]) // unit}"
          + ("" if unit == 1 else " MB"))
"""


WRITER = """
import os, time
with open("big", "wb") as fh:
    fh.write(b"y" * (15 << 20))
time.sleep(1.0)
"""


async def _counters() -> str:
    from tierwise.sandbox import run_python

    await run_python("pass", limits=limits())
    task = asyncio.create_task(run_python(WATCH, limits=limits(), audit_hook=False))
    await asyncio.sleep(1.5)
    block = bytearray(1 << 30)
    for i in range(0, len(block), 4096):
        block[i] = 1
    path = "/var/tmp/tierwise-round14-fill"
    with open(path, "wb") as fh:
        fh.write(b"x" * (200 << 20))
        fh.flush()
        os.fsync(fh.fileno())
    other = await run_python(WRITER, limits=limits(), audit_hook=False)
    await asyncio.sleep(1.0)
    del block
    os.unlink(path)
    r = await task
    return (f"the host took 1 GB of memory and wrote 200 MB to its disk, then another run wrote 15 MB in its folder "
            f"({other.summary()}): {r.stdout.strip() or r.summary()}")


# ---- locks ---------------------------------------------------------------------------------------------------------

LOCKS = """
import os, fcntl, time
fds = [os.open(f"f{{i}}", os.O_CREAT | os.O_RDWR, 0o600) for i in range({files})]
n = 0
try:
    for k in range(10_000_000, 0, -1):  # (downwards: each new lock goes first in its file's list, the cheapest)
        for fd in fds:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 2 * k)
            n += 1
        if n % 5000 < len(fds):
            print(n, "locks held", flush=True)
except OSError as e:
    print("stopped:", e.strerror, flush=True)
"""


def _peak_usage(group: Any) -> int:
    for place, folder in group.folders:
        if place.controller == "memory" and not place.v2:
            with open(os.path.join(folder, "memory.max_usage_in_bytes")) as fh:
                return int(fh.read())
    return 0


async def _locks_once(cpu_s: int, files: int) -> str:
    from tierwise.sandbox import runner

    before = _slab()[0]
    peak, size, used = before, 0, 0
    async with runner.open_python(LOCKS.format(files=files), limits=limits(cpu_s=cpu_s), audit_hook=False) as live:
        assert live.proc is not None and live.proc.stdout is not None
        out = b""
        reading = asyncio.create_task(live.proc.stdout.read())
        while not reading.done():
            await asyncio.sleep(0.1)
            now, size = _slab()
            peak = max(peak, now)
            if live.group is not None:
                used = max(used, _peak_usage(live.group))
        out = reading.result()
    held = out.decode().strip().splitlines()[-1:] or ["?"]
    return (f"cpu_s {cpu_s}, {files} files: {held[0]}; file_lock_cache +{peak - before} objects of {size} bytes "
            f"= {(peak - before) * size / 1e6:.1f} MB; the run's memory cgroup peak {used / 1e6:.1f} MB")


async def _locks() -> str:
    from tierwise.sandbox import run_python

    await run_python("pass", limits=limits())
    said = [await _locks_once(cpu_s, files) for cpu_s, files in ((2, 56), (5, 56), (10, 56), (5, 8))]
    return "; ".join(said)


# ---- share ---------------------------------------------------------------------------------------------------------

async def _share_once(runs: int) -> str:
    own, results = await spin_beside(runs)
    got = [cpu_of(r) for r in results]
    return (f"{runs} run(s): gateway {own:.2f} s, runs {'+'.join(f'{g:.2f}' for g in got)} = {sum(got):.2f} s: "
            f"all runs {sum(got) / own:.2f}x the gateway's")


async def _in_own_cpu_cgroup(runs: int) -> str:
    """The gateway in a cpu cgroup of its own below the v1 root (as a service's cgroup: no autogroup there), its runs
    joining no cpu cgroup, so that its tasks and theirs are weighed one by one."""
    from tierwise.sandbox import cgroup

    parent = cgroup._cpu_parent(os.getpid())
    assert parent is not None
    folder = os.path.join(parent, f"tierwise-bench-{os.getpid()}")
    os.mkdir(folder)
    try:
        cgroup._write(os.path.join(folder, "cgroup.procs"), "0")
        return await _share_once(runs)
    finally:
        cgroup._write(os.path.join(parent, "cgroup.procs"), "0")
        os.rmdir(folder)


async def _share() -> str:
    from tierwise.sandbox import backend, cgroup, run_python

    await run_python("pass", limits=limits())
    said = []
    mode = "bwrap" if backend.status().strong else "weak"
    for runs in (1, 2, 4) if mode == "bwrap" else (4,):
        backend.capacity = backend.Capacity(max(runs, 2))
        said.append(f"shared cgroup, {await _share_once(runs)}")
    real = cgroup.runs_cpu
    cgroup.runs_cpu = lambda: None  # type: ignore[assignment]  # (as on cgroup v2: not made)
    try:
        for runs in (1, 2, 4) if mode == "bwrap" else (4,):
            backend.capacity = backend.Capacity(max(runs, 2))
            said.append(f"none (as v2), {await _share_once(runs)}")
        backend.capacity = backend.Capacity(4)
        said.append(f"none, the gateway in a cpu cgroup of its own (a service's), {await _in_own_cpu_cgroup(4)}")
    finally:
        cgroup.runs_cpu = real  # type: ignore[assignment]
    return "\n  ".join(["", *said])


ATTACKS = {"swap": _swap, "counters": _counters, "locks": _locks, "share": _share}


if __name__ == "__main__":
    asyncio.run(run_attacks(*command_line(__doc__, ATTACKS), ATTACKS, bwrap_only=("swap",), one_line=False))
