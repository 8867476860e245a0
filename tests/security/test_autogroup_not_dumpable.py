"""A sandbox run of a gateway that is not root lowers its session's autogroup (cgroup._lower_priority, session 33/34:
4 runs spinning took 3.97x the gateway's CPU without it). A gateway made not dumpable (the weak sandbox's shield,
and since session 38 before every trusted ensemble script) has root's /proc/self files, so the write between fork and
exec failed in silence and the run kept a whole autogroup at nice 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A gateway process as uid 65534 (where the test runs as root; itself otherwise), not dumpable, forking a child that
# does what a run's child does before exec, then reads back its autogroup's nice level.
GATEWAY = """
import ctypes, os, sys
import tierwise.sandbox.cgroup as cgroup
if os.geteuid() == 0:
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
from tierwise.sandbox.weak import not_dumpable
assert not_dumpable()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()  # (the runner's child starts a session, hence an autogroup, of its own)
    cgroup._lower_priority(3)
    with open("/proc/self/autogroup") as f:
        os.write(w, f.read().encode())
    os._exit(0)
os.waitpid(pid, 0)
os.close(w)
print(os.read(r, 4096).decode().strip())
"""


def test_a_run_of_a_gateway_made_not_dumpable_still_lowers_its_autogroup() -> None:
    if not Path("/proc/self/autogroup").exists():  # a kernel without autogroups: nothing to lower
        return
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run([sys.executable, "-c", GATEWAY], env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("nice 3"), out.stdout
