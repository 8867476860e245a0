"""A sandbox run of a gateway that is not root lowers its session's autogroup (cgroup._lower_priority, session 33/34:
4 runs spinning took 3.97x the gateway's CPU without it). A gateway made not dumpable (the weak sandbox's shield,
and since session 38 before every trusted ensemble script) has root's /proc/self files, so the write between fork and
exec failed in silence and the run kept a whole autogroup at nice 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A gateway process as uid 65534 (where the test runs as root; itself otherwise), not dumpable, forking a child that
# does what a run's child does before exec (up to its autogroup's lowering); each program goes on from there.
FORKED = """
import os, time
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
"""

# The child reads back its autogroup's nice level.
GATEWAY = FORKED + """
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


# The same child, paused after it lowered its autogroup (before its exec), and a process of the gateway's user (what a
# trusted host script is) reading its /proc/<pid>/environ: the gateway's own environment, keys included, until the exec.
WINDOW = FORKED + """
    os.write(w, b"x")
    time.sleep(60)  # (killed below: stands for the rest of the child's way to its exec)
    os._exit(0)
os.read(r, 1)
reader = os.fork()
if reader == 0:  # another process of the user
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            os.write(1, b"READ " + fh.read())
    except OSError as e:
        os.write(1, f"REFUSED {e.errno}".encode())
    os._exit(0)
os.waitpid(reader, 0)
os.kill(pid, 9)
os.waitpid(pid, 0)
"""


def test_a_runs_child_made_dumpable_for_its_autogroup_is_not_readable_before_its_exec() -> None:
    """review38c: the child was made dumpable again to write its autogroup (b1fd6468) and stayed so until its exec,
    while it still held the gateway's memory and environment: a host script of the gateway's user polling for new
    PIDs read the provider keys in /proc/<child>/environ (or mem) in that window. It is made not dumpable again at once."""
    if not Path("/proc/self/autogroup").exists():
        return
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run([sys.executable, "-c", WINDOW], capture_output=True, text=True, timeout=120, cwd="/",
                         env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "sk-proj" not in out.stdout
    assert out.stdout.startswith("REFUSED"), out.stdout[:300]
