"""The CPU of the clean-up's process of its own (tierwise.sandbox.cleanup) for a chain of N nested folders on /dev/shm.
Not a test: it prints what it saw (bench/RESULTS.md "Sandbox clean-up review").

    PYTHONPATH=src .venv/bin/python bench/cleanup_chain.py N [path/to/cleanup.py]

The chain is made here, then the given cleanup.py (default this tree's) is run as that process is run.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

from tierwise.sandbox import cleanup

depth = int(sys.argv[1])
top = "/dev/shm/tw-cleanup-chain"
os.mkdir(top)
fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
for _ in range(depth):
    os.mkdir("d", dir_fd=fd)
    sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = sub
os.close(fd)
wall, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
script = sys.argv[2] if len(sys.argv) > 2 else cleanup.__file__
r = subprocess.run([sys.executable, "-I", "-S", script, top], capture_output=True, timeout=900)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{depth} nested folders: rc {r.returncode}, wall {time.perf_counter() - wall:.2f} s, "
      f"CPU {after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime:.2f} s, gone {not os.path.lexists(top)}")
