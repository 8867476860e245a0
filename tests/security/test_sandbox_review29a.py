"""review29a: the compiler of `python_code` (tierwise.verifiers.code) reads the model's text with CPython's parser and
compiler, C code, and ran as the gateway's user (root here) with rlimits alone: no seccomp filter, no Landlock, no
switch of user. A memory-safety bug there (crashes on crafted source turn up in every release) would have run with
the gateway's full rights. The child is confined now as a weak run is, but for a folder of its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, backend, landlock, run_python, weak
from tierwise.verifiers import code as code_mod

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

# Stands for code that a parser bug would run in the compiler's process (the program the child runs is ours).
PROBE = """
import os, socket, sys
sys.stdin.buffer.read()
def attempt(name, fn):
    try:
        fn()
        print(name, "WORKED")
    except OSError as e:
        print(name, "refused", e.errno)
attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
attempt("read", lambda: open(READ, "rb").read())
attempt("write", lambda: open(WRITE, "wb").close())
attempt("fork", lambda: os._exit(0) if os.fork() == 0 else os.wait())
print("UID", os.geteuid())
"""


async def test_the_compiler_of_python_code_runs_confined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What code in the compiler's process could do: open a socket, fork, read and write the gateway's files (a
    0644 file in a 0755 folder: the gateway's config, its ledger), as root. Refused now (seccomp, Landlock), and
    a root gateway's compiler is the sandbox's user."""
    if weak.filter_loader(False) is None:
        unavailable("no libseccomp (pyseccomp) here")
    os.chmod(tmp_path, 0o755)
    secret = tmp_path / "tierwise.yaml"
    secret.write_text("api_key: sk-not-for-the-compiler\n")
    secret.chmod(0o644)
    probe = f"READ = {str(secret)!r}\nWRITE = {str(tmp_path / 'planted')!r}\n" + PROBE
    monkeypatch.setattr(code_mod, "_COMPILE", probe)
    said = await code_mod._compile_in_child("x = 1\n") or ""
    assert "socket refused 1" in said, said
    assert "fork refused 1" in said, said
    assert "WORKED" not in said, said
    if landlock.abi() >= 1 or (os.geteuid() == 0 and backend.weak_run_as() is not None):
        assert "read refused" in said and "write refused" in said, said
    assert not (tmp_path / "planted").exists()
    if os.geteuid() == 0 and backend.weak_run_as() is not None:
        assert "UID 0" not in said, said


async def test_the_confined_compiler_still_tells_good_code_from_bad() -> None:
    """The standard library the compiler needs still imports under its confinement."""
    assert await code_mod.compile_error("def f(x):\n    return x + 1\n") is None
    said = await code_mod.compile_error("def f(:\n    pass\n")
    assert said is not None and said.startswith("syntax error at line 1"), said


DESCRIPTOR_PASSING = (
    """
import asyncio, socket
"""
    + attempt_prelude("SENT")
    + """
a, b = socket.socketpair()
attempt("SCM_RIGHTS", lambda: socket.send_fds(a, [b"x"], [a.fileno(), b.fileno()]))
attempt("sendmsg data", lambda: a.sendmsg([b"x"]))
attempt("send (stays)", lambda: a.send(b"y"))
print("GOT", b.recv(16))
async def main():
    await asyncio.sleep(0)
    return "LOOP"
print(asyncio.run(main()))
"""
)


async def test_a_run_passes_no_descriptor_through_its_socket_pair(mode: str) -> None:  # noqa: F811
    """A run's stream pair carried descriptors (SCM_RIGHTS), its own sockets among them: descriptors in flight and
    sockets that hold each other are the unix garbage collector's, kernel code behind privilege escalations exploited
    in the wild (CVE-2021-0920; CVE-2023-4622, CVE-2024-26923), and the count in flight is the host user's (shared by
    every run of the sandbox's uid). Python sends none but through `sendmsg`: refused (and `sendmmsg`); `send` stays,
    and asyncio's loop (a stream pair)."""
    r = await run_python(DESCRIPTOR_PASSING, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    assert "SCM_RIGHTS refused 1" in r.stdout and "sendmsg data refused 1" in r.stdout, r.stdout
    assert "send (stays) SENT" in r.stdout and "GOT b'y'" in r.stdout and "LOOP" in r.stdout, r.stdout
