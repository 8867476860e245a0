"""A gateway that is not root runs the weak sandbox's code as its own user (no user to switch to): what that code
reaches of the gateway process itself, with the OS layer alone (session 24, bench/RESULTS.md "Sandbox attack
round 5"). The gateway here is a child of the test switched to an unprivileged uid (as root, the test stages the
interpreter's folder for it, as the sandbox does for its own user)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.harness import unavailable
from tierwise.sandbox import identity

SECRET = "sk-ROUND5-GATEWAY-ENV-SECRET"
GATEWAY_UID = 61000

# The gateway: configures the weak sandbox as `serve` does, then runs the model's code (hook off).
GATEWAY = """
import asyncio, os, sys
sys.path.insert(0, sys.argv[1])
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, bwrap, run_python
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
code = f"GATEWAY = {os.getpid()}\\n" + sys.argv[2]
r = asyncio.run(run_python(code, limits=SandboxLimits(wall_s=60), audit_hook=False))
print("RUNS_AS", r.runs_as)
print(r.stdout, r.stderr)
"""

AGAINST_THE_GATEWAY = """
import os
def attempt(name, fn):
    try:
        print(name, "DONE", repr(fn())[:60])
    except OSError as e:
        print(name, "refused", e.errno)
def memory():
    with open(f"/proc/{GATEWAY}/maps") as fh:
        heap = next(line for line in fh if "[heap]" in line)
    with open(f"/proc/{GATEWAY}/mem", "r+b") as fh:
        fh.seek(int(heap.split("-")[0], 16))
        return len(fh.read(64))
attempt("environ", lambda: open(f"/proc/{GATEWAY}/environ", "rb").read())
attempt("memory", memory)
attempt("descriptors", lambda: os.listdir(f"/proc/{GATEWAY}/fd"))
attempt("folder", lambda: os.listdir(f"/proc/{GATEWAY}/cwd"))
"""


def test_a_weak_run_of_a_gateway_that_is_not_root_cannot_reach_the_gateway_process() -> None:
    """The run is the gateway's user, so /proc/<gateway>/environ (the provider keys), /proc/<gateway>/mem (its
    memory, opened for writing), /proc/<gateway>/fd and cwd were the run's to open: all four DONE, the key read.
    The gateway now makes itself not dumpable (prctl): those files are root's, ptrace-style access refused."""
    if os.geteuid() != 0:
        unavailable("the test makes an unprivileged gateway: it needs root (id -u is not 0)")
    user = identity.User(GATEWAY_UID, GATEWAY_UID)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
    reach = [os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), os.path.realpath(src)]
    prepared = identity.switcher(user, identity.plan(reach, user))
    r = subprocess.run([sys.executable, "-c", GATEWAY, src, AGAINST_THE_GATEWAY], capture_output=True, text=True,
                       timeout=180, cwd="/tmp", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                     "OPENAI_API_KEY": SECRET},
                       preexec_fn=lambda: identity.switch(prepared))
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"RUNS_AS the gateway's own user (uid {GATEWAY_UID})" in r.stdout, r.stdout
    assert SECRET not in r.stdout, r.stdout
    for name in ("environ", "memory", "descriptors", "folder"):
        assert f"{name} refused 13" in r.stdout, r.stdout
