"""review30b: what a weak run sees of the interpreter's installation where the host is read-only and the kernel has no
Landlock (a kernel without it in its lsm= list). Failed before its fix."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, backend, run_python, weak
from tierwise.sandbox import bwrap as bwrap_mod
from tierwise.sandbox.backend import SandboxUnavailable

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)


@pytest.fixture
def read_only_host_alone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Weak runs with the host read-only (a mount namespace) and no Landlock."""
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    monkeypatch.setattr(weak, "landlock_rules", lambda *args: None)
    sandbox.status.cache_clear()
    backend.weak_run_as.cache_clear()
    sandbox.configure(allow_weak=True)
    yield
    sandbox.status.cache_clear()
    backend.weak_run_as.cache_clear()
    sandbox.configure()


def _outside_the_library() -> str:
    """A file of the interpreter's installation outside its library folder (a console script in `bin`, a header in
    `include`; conda keeps every package's files in `pkgs` too)."""
    prefix, library = os.path.realpath(sys.base_prefix), weak.library()
    python = os.path.realpath(bwrap_mod.interpreter())
    for top, folders, names in os.walk(prefix):
        folders[:] = [f for f in folders if os.path.join(top, f) != library]
        for name in names:
            path = os.path.join(top, name)
            if os.path.isfile(path) and not os.path.islink(path) and os.path.realpath(path) != python:
                return path
    unavailable("the interpreter's installation holds nothing outside its library folder here")
    raise AssertionError


async def test_a_weak_run_reads_nothing_of_the_installation_but_its_library(read_only_host_alone: None) -> None:
    """The weak sandbox showed the interpreter's installation whole (`weak.prefix()`, re-shown where the host is
    covered): with no Landlock a run listed and read its `bin` (pyenv's 40 console scripts here), `include` and
    `share`, and for conda `pkgs`, a copy of every installed package, and `envs`, every other environment's packages.
    Now it is shown what bubblewrap binds: the library folder (the standard library, its packages hidden) and the
    interpreter's file."""
    target = _outside_the_library()
    program = attempt_prelude("READ") + (f"attempt('installation file', lambda: open({target!r}, 'rb').read())\n"
                                         "import json, sqlite3, ssl, zoneinfo\nprint('STDLIB', zoneinfo.ZoneInfo('UTC'))\n")
    try:
        r = await run_python(program, limits=LIMITS, audit_hook=False)
    except SandboxUnavailable as e:
        unavailable(f"no weak sandbox with a read-only host here: {e}")
    assert "readonly_host" in r.layers and "landlock" not in r.layers, r.layers
    assert "installation file refused" in r.stdout and "READ" not in r.stdout, (target, r.stdout, r.stderr)
    assert "STDLIB UTC" in r.stdout, r.stderr
