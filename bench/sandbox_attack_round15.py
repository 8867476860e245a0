"""Session 34's sandbox attack round (bench/RESULTS.md "Sandbox round 15"): what a hostile run, or a local user, does.
Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round15.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

Modes as bench/sandbox_attack_round11.py's. Attacks:
- `share`: 4 runs spin beside the gateway's own spin over the same 6 s with the runs' shared cpu cgroup off (as on
  cgroup v2, where it is not made; the gateway in the root cgroup, autogroup on): all runs' CPU / the gateway's.
- `watch`: a run stats its folder's parent and grandparent, `/dev/shm` and `/tmp` every 20 ms for 9 s while the host
  starts three other runs one after another: how often each changed (link count, modification time).
- `inodes`: a run makes a file every 20 ms and reads its inode number while another run makes 0 or 500 files a
  second in its own folder (alternating each second, 8 s): the jumps it saw, per second (a shared inode counter).
- `flock`: with `threads=True`, one run holds/drops LOCK_EX on the standard library's os.py a bit a second, another
  asks with LOCK_NB: bits received of 8 sent.
- `getlk`: the gateway holds a POSIX read lock on os.py; a run asks F_GETLK for a write lock: what it was told.
- `pids` (`threads=True`): one run starts a thread every 20 ms and reads its thread id while another starts and
  joins 25 threads a second on even seconds (8 s): the ids others took, per second (the PID counter of the run's PID
  namespace: the host's where the run has none of its own).
- `startup` (bwrap only): 60 runs of `pass` (audit hook on), alternately with and without `--new-session` added back to
  bubblewrap's argv: the median wall time of each (what dropping it costs, in one process, one load).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)
from bench.sandbox_spin import cpu_of, limits, spin_beside  # noqa: E402
from tests.security.sandbox_programs import FLOCK_RECEIVER, FLOCK_SENDER  # noqa: E402 (the test's programs)


async def _share() -> str:
    from tierwise.sandbox import backend, cgroup, run_python

    await run_python("pass", limits=limits())
    real = cgroup.runs_cpu
    cgroup.runs_cpu = lambda: None  # type: ignore[assignment]  # (as on cgroup v2: not made)
    try:
        backend.capacity = backend.Capacity(4)
        own, results = await spin_beside(4)
    finally:
        cgroup.runs_cpu = real  # type: ignore[assignment]
    got = [cpu_of(r) for r in results]
    return (f"none (as v2), 4 runs: gateway {own:.2f} s, runs {'+'.join(f'{g:.2f}' for g in got)} = {sum(got):.2f} s:"
            f" all runs {sum(got) / own:.2f}x the gateway's")


WATCH = """
import os, time
places = {"..": "..", "../..": "../..", "/dev/shm": "/dev/shm", "/tmp": "/tmp"}
last, changes = {}, {k: 0 for k in places}
end = time.time() + 9
while time.time() < end:
    for k, p in places.items():
        try:
            st = os.stat(p)
            now = (st.st_nlink, st.st_mtime_ns)
        except OSError as e:
            now = ("err", e.errno)
        if k in last and last[k] != now:
            changes[k] += 1
        last[k] = now
    time.sleep(0.02)
print(os.path.realpath("."), changes, {k: v[0] for k, v in last.items()})
"""


async def _watch() -> str:
    from tierwise.sandbox import SandboxLimits, backend, run_python

    backend.capacity = backend.Capacity(4)
    lim = SandboxLimits(wall_s=30, cpu_s=20, memory_mb=256)
    watcher = asyncio.create_task(run_python(WATCH, limits=lim, audit_hook=False))
    await asyncio.sleep(2.5)
    for _ in range(3):
        await run_python("import time; time.sleep(0.5)", limits=lim, audit_hook=False)
        await asyncio.sleep(0.7)
    r = await watcher
    return (r.stdout.strip() or r.summary())


# The end of a reader program: `seen` holds (second, the jump of a counter since the last reading); printed per second,
# the jumps past one step each (what other processes took of the counter).
PER_SECOND = """\
per = {}
for sec, jump in seen:
    per.setdefault(sec, []).append(jump)
print(" ".join(str(sum(v) - len(v)) for _, v in sorted(per.items())))
"""
INODES = """
import os, time
seen, last = [], None
end = time.time() + 8
i = 0
while time.time() < end:
    with open(f"f{i % 2}", "w"):
        pass
    ino = os.stat(f"f{i % 2}").st_ino
    os.unlink(f"f{i % 2}")
    if last is not None:
        seen.append((int(time.time()), ino - last))
    last, i = ino, i + 1
    time.sleep(0.02)
""" + PER_SECOND
MAKER = """
import os, time
end = time.time() + 9
n = 0
while time.time() < end:
    if int(time.time()) % 2 == 0:
        for _ in range(10):
            open(f"m{n}", "w").close(); os.unlink(f"m{n}"); n += 1
    time.sleep(0.02)
print(n)
"""


async def _beside(maker_program: str, reader_program: str, threads: bool = False) -> tuple[Any, Any]:
    """(the reader's result, the maker's): two runs at once, 4 allowed."""
    from tierwise.sandbox import SandboxLimits, backend, run_python

    backend.capacity = backend.Capacity(4)
    lim = SandboxLimits(wall_s=30, cpu_s=20, memory_mb=256, threads=threads)
    maker = asyncio.create_task(run_python(maker_program, limits=lim, audit_hook=False))
    reader = await run_python(reader_program, limits=lim, audit_hook=False)
    return reader, await maker


async def _inodes() -> str:
    reader, made = await _beside(MAKER, INODES)
    return (f"inodes another process took, per second: {reader.stdout.strip() or reader.summary()} "
            f"(the other run made {made.stdout.strip() or made.summary()}; even seconds)")


async def _flock() -> str:
    from tierwise.sandbox import SandboxLimits, backend, run_python

    backend.capacity = backend.Capacity(4)
    lim = SandboxLimits(wall_s=30, cpu_s=20, memory_mb=256, threads=True)
    start = time.time() + 3
    send = asyncio.create_task(run_python(FLOCK_SENDER.format(start=start), limits=lim, audit_hook=False))
    got = await run_python(FLOCK_RECEIVER.format(start=start), limits=lim, audit_hook=False)
    await send
    return f"threads=True: sent 10110100, received {got.stdout.strip() or got.summary()}"


GETLK = """
import fcntl, os, struct
fd = os.open(os.__file__, os.O_RDONLY)
want = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
print(struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, want)))
"""


async def _getlk() -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    fd = os.open(os.__file__, os.O_RDONLY)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        r = await run_python(GETLK, limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256), audit_hook=False)
    finally:
        os.close(fd)
    return f"gateway pid {os.getpid()}; run's F_GETLK (type, whence, start, len, pid): {r.stdout.strip() or r.summary()}"


TIDS = """
import threading, time
seen, last = [], None
end = time.time() + 8
while time.time() < end:
    t = threading.Thread(target=lambda: None)
    t.start()
    tid = t.native_id
    t.join()
    if last is not None:
        seen.append((int(time.time()), tid - last))
    last = tid
    time.sleep(0.02)
""" + PER_SECOND
THREAD_MAKER = """
import threading, time
end = time.time() + 9
n = 0
while time.time() < end:
    if int(time.time()) % 2 == 0:
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        n += 1
    time.sleep(0.04)
print(n)
"""


async def _pids() -> str:
    reader, made = await _beside(THREAD_MAKER, TIDS, threads=True)
    return (f"ids others took, per second: {reader.stdout.strip() or reader.summary()} "
            f"(the other run started {made.stdout.strip() or made.summary()} threads; even seconds)")


async def _startup() -> str:
    import statistics

    from tierwise.sandbox import SandboxLimits, bwrap, run_python

    real = bwrap.command

    def with_new_session(*args: object, **kwargs: object) -> list[str]:
        cmd = real(*args, **kwargs)  # type: ignore[arg-type]
        return [cmd[0], "--new-session", *cmd[1:]]

    lim = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)
    await run_python("pass", limits=lim)
    times: dict[str, list[float]] = {"--new-session": [], "without": []}
    try:
        for i in range(60):
            bwrap.command = with_new_session if i % 2 else real  # type: ignore[assignment]
            t0 = time.perf_counter()
            r = await run_python("pass", limits=lim)
            times["--new-session" if i % 2 else "without"].append((time.perf_counter() - t0) * 1000)
            assert r.returncode == 0, r.summary()
    finally:
        bwrap.command = real  # type: ignore[assignment]
    return ", ".join(f"{k} median {statistics.median(v):.0f} ms" for k, v in times.items())


ATTACKS = {"share": _share, "watch": _watch, "inodes": _inodes, "flock": _flock, "getlk": _getlk, "pids": _pids, "startup": _startup}


if __name__ == "__main__":
    asyncio.run(run_attacks(*command_line(__doc__, ATTACKS), ATTACKS, bwrap_only=("share", "startup"), one_line=False))
