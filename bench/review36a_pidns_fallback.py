"""review36a: the weak sandbox on a kernel that allows a mount namespace but refuses CLONE_NEWPID (simulated by a
seccomp filter of the gateway process refusing unshare/clone with that flag, as a container profile can), against
this kernel as it is: what the read-only-host probe answers, how long it takes, and a run's layers and PIDs.

    PYTHONPATH=src .venv/bin/python bench/review36a_pidns_fallback.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.security.sandbox_programs import REFUSE_PID_NAMESPACES, WEAK_GATEWAY  # noqa: E402 (the test's pieces)

GATEWAY = WEAK_GATEWAY + """
import asyncio, sys, time
t = time.perf_counter()
view = backend.weak_read_only_host(), backend.weak_pid_namespace()
probe_ms = (time.perf_counter() - t) * 1000
r = asyncio.run(run_python("import os\\nprint(os.getpid(), os.getppid())", limits=SandboxLimits(wall_s=30, cpu_s=5),
                           audit_hook=False))
print(f"{sys.argv[1]:8} read_only={view[0]} pidns={view[1]} probe={probe_ms:.0f} ms  run: rc={r.returncode} "
      f"pid/ppid={r.stdout.split()} layers={r.layers}")
"""


def main() -> None:
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    for mode in ("kernel", "refused"):
        program = (REFUSE_PID_NAMESPACES if mode == "refused" else "") + GATEWAY
        r = subprocess.run([sys.executable, "-c", program, mode], capture_output=True, text=True, timeout=180,
                           cwd="/tmp", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": src})
        print(r.stdout.strip() or r.stderr[-1000:])


if __name__ == "__main__":
    main()
