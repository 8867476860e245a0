"""Session 30's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 11"). OS layer alone (no audit
hook); each test failed before its fix."""

from __future__ import annotations

import os

import pytest

from tests.harness import unavailable
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, backend, run_python, weak
from tierwise.verifiers import code as code_mod

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

# What an exec could ever grant: the bounding set (prctl PR_CAPBSET_READ for each capability), the ambient set, and
# whether no_new_privs holds. Read with system calls: no run has a /proc of its own to read CapBnd from.
CAPABILITIES = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def prctl(*args):
    return libc.prctl(*[ctypes.c_ulong(a) for a in args])
bounding = sum(1 << cap for cap in range(64) if prctl(23, cap, 0, 0, 0) == 1)
ambient = sum(1 << cap for cap in range(64) if prctl(47, 1, cap, 0, 0) == 1)
print(f"UID {os.getresuid()} GID {os.getresgid()} GROUPS {os.getgroups()}")
print(f"CAPBND {bounding:x} CAPAMB {ambient:x} NNP {prctl(39, 0, 0, 0, 0)}")
"""


def _root_with_setpcap() -> None:
    """The gateway is root and may empty a bounding set (CAP_SETPCAP): where it may not, nothing here changes it."""
    if os.geteuid() != 0:
        unavailable("the gateway is not root: its runs switch no user (their bounding set is the gateway's)")
    with open("/proc/self/status") as fh:
        effective = int(next(line for line in fh if line.startswith("CapEff:")).split()[1], 16)
    if not effective >> 8 & 1:
        unavailable("this root gateway has no CAP_SETPCAP")


async def test_a_run_keeps_no_capability_an_exec_could_grant(mode: str) -> None:  # noqa: F811
    """A weak run switched from root kept the whole bounding set (CapBnd 1fffeffffff: every capability an exec could
    still grant; bubblewrap's runs, `--cap-drop ALL`, 0). no_new_privs already keeps exec from granting one; emptied
    now as bubblewrap does."""
    _root_with_setpcap()
    r = await run_python(CAPABILITIES, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    assert "CAPBND 0 CAPAMB 0 NNP 1" in r.stdout, r.stdout
    assert "GROUPS []" in r.stdout and "UID (0," not in r.stdout, r.stdout


async def test_the_compiler_keeps_no_capability_an_exec_could_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiler of `python_code` (review29a: the sandbox's user, seccomp, Landlock) kept the whole bounding set
    too. Its uid, gid and groups are the sandbox user's alone, no ambient capability, no_new_privs."""
    _root_with_setpcap()
    if weak.filter_loader(False) is None or backend.weak_run_as() is None:
        unavailable("the compiler is not confined here (no libseccomp, or no switch of user)")
    user = backend.weak_run_as()
    assert user is not None
    monkeypatch.setattr(code_mod, "_COMPILE", "import sys\nsys.stdin.buffer.read()\n" + CAPABILITIES)
    said = await code_mod._compile_in_child("x = 1\n") or ""
    assert "CAPBND 0 CAPAMB 0 NNP 1" in said, said
    assert f"UID ({user.uid}, {user.uid}, {user.uid}) GID ({user.gid}, {user.gid}, {user.gid}) GROUPS []" in said, said
