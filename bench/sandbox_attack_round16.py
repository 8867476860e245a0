"""Session 35's sandbox attack round (bench/RESULTS.md "Sandbox round 16"): what a hostile run does. Not a test: it
prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round16.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

Modes as bench/sandbox_attack_round11.py's. Attacks:
- `truncate`: a host program's 0666 file in a folder of /tmp; the run truncates it by path, then its own file by
  path, under rulesets made for Landlock ABI 1, 2, 3 and the kernel's own (what a kernel of that ABI enforces; the
  run's filter as the gateway builds it for that ABI): the file's size after, and what the run was told.
- `threadflock` (`threads=True`): two threads of one run take LOCK_EX on two descriptors of one file of its own, 400
  rounds, each holding it while the other asks with LOCK_NB: how often both held it at once, and what flock said.
- `flock` (`threads=True`): round 15's channel between two runs through LOCK_EX on os.py (0 granted, 1 held by the
  sender, - refused), 8 bits sent (10110100).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)
from tests.security.sandbox_programs import FLOCK_RECEIVER, FLOCK_SENDER, host_file  # noqa: E402 (the test's programs)

TRUNCATE = """
import os
for name, path in (("host", PLANTED), ("own", "mine")):
    if name == "own":
        open(path, "w").write("own file")
    try:
        os.truncate(path, 0)
        print(name, "truncated")
    except OSError as e:
        print(name, "refused", e.errno)
"""


async def _truncate() -> str:
    from tierwise.sandbox import SandboxLimits, landlock, run_python

    real = landlock.abi
    said = []
    for asked in (1, 2, 3, real()):
        version = min(asked, real())
        landlock.abi = lambda v=version: v  # type: ignore[assignment,misc]
        path = host_file("tw-r16b-")
        folder = os.path.dirname(path)
        try:
            r = await run_python(f"PLANTED = {path!r}\n" + TRUNCATE, limits=SandboxLimits(wall_s=30, memory_mb=256),
                                 audit_hook=False)
            said.append(f"ABI {version}: host file {os.path.getsize(path)} of 17 bytes left; run: "
                        f"{r.stdout.strip().replace(chr(10), ', ') or r.summary()} [{', '.join(r.layers)}]")
        finally:
            landlock.abi = real
            shutil.rmtree(folder, ignore_errors=True)
    return "\n".join(said)


THREAD_FLOCK = """
import fcntl, os, threading
both, answers = 0, {}
for i in range(400):
    held, asked = threading.Event(), threading.Event()
    state = []
    def first():
        fd = os.open("lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state.append("first")
        except OSError as e:
            answers[e.errno] = answers.get(e.errno, 0) + 1
        held.set()
        asked.wait(10)
        os.close(fd)
    def second():
        fd = os.open("lock", os.O_CREAT | os.O_RDWR, 0o600)
        held.wait(10)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            state.append("second")
        except OSError as e:
            answers[e.errno] = answers.get(e.errno, 0) + 1
        asked.set()
        os.close(fd)
    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start(); b.start(); a.join(); b.join()
    both += len(state) == 2
print(f"both held {both} of 400; errors {answers}")
"""


async def _threadflock() -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    r = await run_python(THREAD_FLOCK, limits=SandboxLimits(wall_s=60, cpu_s=20, memory_mb=256, threads=True),
                         audit_hook=False)
    return r.stdout.strip() or r.summary()


async def _flock() -> str:
    from tierwise.sandbox import SandboxLimits, backend, run_python

    backend.capacity = backend.Capacity(2)
    lim = SandboxLimits(wall_s=40, cpu_s=20, memory_mb=256, threads=True)
    start = time.time() + 4
    send = asyncio.create_task(run_python(FLOCK_SENDER.format(start=start), limits=lim, audit_hook=False))
    got = await run_python(FLOCK_RECEIVER.format(start=start), limits=lim, audit_hook=False)
    await send
    return f"sent 10110100, received {got.stdout.strip() or got.summary()}"


ATTACKS = {"truncate": _truncate, "threadflock": _threadflock, "flock": _flock}


if __name__ == "__main__":
    asyncio.run(run_attacks(*command_line(__doc__, ATTACKS), ATTACKS, one_line=False))
