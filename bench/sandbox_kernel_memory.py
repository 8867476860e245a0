"""Kernel memory one sandbox run can hold outside RLIMIT_AS (tierwise.sandbox, OS layer only:
no audit hook), as an attacker would take it:

- socket pairs filled both ways after asking for the largest buffers (SO_SNDBUF/SO_RCVBUF), then
  pipes after F_SETPIPE_SZ, until the run is out of descriptors: MB queued in the kernel;
- one byte of each of 16 fresh 2 MB huge pages given to each pipe with vmsplice, the pages then
  unmapped (the pipe keeps them), until out of descriptors: MB pinned;
- empty folders made in the run's tmpfs until the CPU or wall limit stops it: inodes made (the
  tmpfs `--size` counts data, not inodes; ~1 KB of kernel memory each, freed with the sandbox);
  the run's memory cgroup, where there is one, stops it first;
- 60 KB extended attributes on fresh files in the run's tmpfs (kernel memory), at most 2 GB;
- 16 MB files written into the first folder hidden under a tmpfs (site-packages), at most 2 GB.
  `--no-cgroup` runs all of it without the per-run cgroups, as on a machine without them;
  `--wall S` gives the folder run S seconds of wall and CPU time.

    PYTHONPATH=src python bench/sandbox_kernel_memory.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.verifiers.kernel_memory_attacks import KERNEL_BUFFERS, PINNED_PAGES  # noqa: E402
from tierwise.sandbox import SandboxLimits, cgroup, run_python, status  # noqa: E402
from tierwise.sandbox.bwrap import layout  # noqa: E402

INODES = """
import os, sys
n = 0
try:
    while True:
        os.mkdir(str(n))
        n += 1
        if n % 50000 == 0:
            print("INODES", n, flush=True)
except OSError as e:
    print("INODES", n, "stopped:", e, flush=True)
"""


XATTRS = """
import os
held = 0
try:
    while held < 2048 * 1024 * 1024:
        name = f"x{held}"
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600))
        os.setxattr(name, "user.a", b"v" * 61440)
        held += 61440
        if held % (1000 * 61440) == 0:
            print("XATTR_MB", held >> 20, flush=True)
except OSError as e:
    print("stopped:", e)
print("XATTR_MB", held >> 20, flush=True)
"""

MASK = """
import sys
held = 0
try:
    for i in range(128):
        with open(f"{sys.argv[1]}/f{i}", "wb") as fh:
            for _ in range(16):
                fh.write(b"x" * (1 << 20))
                held += 1
except OSError as e:
    print("stopped:", e)
print("MASK_MB", held, flush=True)
"""


def final(r, marker: str) -> str:
    lines = [line for line in r.stdout.splitlines() if line.startswith(marker)]
    return f"{lines[-1] if lines else 'none'}; ended by {r.signal or r.returncode}{' (out of memory)' * r.out_of_memory}"


async def main() -> None:
    if "--no-cgroup" in sys.argv:
        cgroup.places = lambda: ((), "--no-cgroup")
    print("layers:", ", ".join(status().layers))
    limits = SandboxLimits()  # the defaults a verifier run gets
    r = await run_python(KERNEL_BUFFERS, limits=limits, audit_hook=False)
    print(f"kernel buffers (memory_mb={limits.memory_mb}, open_files={limits.open_files}):",
          (r.stdout.strip().splitlines() or [r.stderr.strip()[-200:]])[-1])
    r = await run_python(PINNED_PAGES, limits=limits, audit_hook=False)
    print(f"pages pinned in pipes by vmsplice (memory_mb={limits.memory_mb}):",
          (r.stdout.strip().splitlines() or [r.stderr.strip()[-200:]])[-1])
    t = time.monotonic()
    wall = float(sys.argv[sys.argv.index("--wall") + 1]) if "--wall" in sys.argv else None
    if wall:  # a longer run, as a verifier configured with larger limits gets
        limits = SandboxLimits(wall_s=wall, cpu_s=int(wall))
    r = await run_python(INODES, limits=limits, audit_hook=False)
    last = [line for line in r.stdout.splitlines() if line.startswith("INODES")][-1:]
    print(f"inodes (cpu_s={limits.cpu_s}, wall_s={limits.wall_s}): {last[0] if last else 'none'}; "
          f"ended by {r.signal or r.returncode}{' (out of memory)' * r.out_of_memory} after {time.monotonic() - t:.1f} s")
    r = await run_python(XATTRS, limits=limits, audit_hook=False)
    print("extended attributes in the run's tmpfs:", final(r, "XATTR_MB"))
    masks = layout().masks
    if masks:
        r = await run_python(MASK.replace("sys.argv[1]", repr(masks[0])), limits=limits, audit_hook=False)
        print(f"written under the tmpfs that hides {masks[0]}:", final(r, "MASK_MB"))


if __name__ == "__main__":
    asyncio.run(main())
