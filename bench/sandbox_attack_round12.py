"""Session 31's sandbox attack round (bench/RESULTS.md "Sandbox attack round 12"): what a hostile run does in each
mode, OS layer alone (no audit hook). Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round12.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

Modes as bench/sandbox_attack_round11.py's. Attacks: `pin` (page-cache folios held in pipe slots by splice, tee and
sendfile, and whether shutil still copies), `packages` (a Python 2's and a PyPy's packages in a system folder: a
folder of this script's plays one, as the test does), `cpu` (two runs spinning beside the gateway over the same six
seconds of wall clock: the CPU each got; a finding left, RESULTS says why), `cleanup` (the priority of the process
removing a big folder).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import _run, command_line, run_attacks  # noqa: E402 (one way to pick a mode)
from bench.sandbox_spin import cpu_of, spin_beside  # noqa: E402
from tests.security.test_sandbox_round12 import PACKAGE_READ, PIN, plant_packages  # noqa: E402 (the tests' programs: one source)


async def _cpu(runs: int = 2) -> str:
    from tierwise.sandbox import run_python

    await run_python("pass")  # (the first run of a process probes the sandbox: past the 1 s below, review31a)
    own, results = await spin_beside(runs)
    got = [cpu_of(r) for r in results]
    return (f"gateway {own:.2f} s CPU, runs {', '.join(f'{g:.2f}' for g in got)} s CPU in the same 6 s: each run "
            f"{sum(got) / len(got) / own:.2f}x the gateway's")


async def _packages() -> str:
    from tierwise.sandbox import bwrap

    system = tempfile.mkdtemp(prefix="tw-round12-system-")
    real = bwrap.SYSTEM_PATHS
    try:
        paths = plant_packages(system)
        bwrap.SYSTEM_PATHS = (*real, system)  # type: ignore[misc]
        bwrap.installed_packages.cache_clear()
        bwrap.layout.cache_clear()
        said = await _run(f"PATHS = {paths!r}\n" + PACKAGE_READ)
    finally:
        bwrap.SYSTEM_PATHS = real  # type: ignore[misc]
        bwrap.installed_packages.cache_clear()
        bwrap.layout.cache_clear()
        shutil.rmtree(system)
    return said.replace(system, "<system>").replace("\n", "; ")


def _cleanup() -> str:
    from tierwise.sandbox import cleanup

    said: list[bytes] = []
    real_run, real_source, real_entries = subprocess.run, cleanup._source, cleanup.ENTRIES

    def run(*args: Any, **kwargs: Any) -> Any:
        done = real_run(*args, **kwargs)
        said.append(done.stdout)
        return done

    cleanup.subprocess.run = run  # type: ignore[assignment]
    cleanup._source = lambda: "import os\nprint(os.getpriority(os.PRIO_PROCESS, 0))\n"  # type: ignore[assignment]
    cleanup.ENTRIES = 5
    folder = tempfile.mkdtemp(prefix="tw-round12-cleanup-")
    try:
        for n in range(20):
            Path(folder, str(n)).write_text("x")
        cleanup.remove_tree(folder)
    finally:
        cleanup.subprocess.run, cleanup._source, cleanup.ENTRIES = real_run, real_source, real_entries  # type: ignore
        shutil.rmtree(folder, ignore_errors=True)
    return (f"gateway nice {os.getpriority(os.PRIO_PROCESS, 0)}, the clean-up process's nice "
            f"{b''.join(said).decode().strip() or 'none started'}")


ATTACKS = {"pin": lambda: _run(PIN), "packages": _packages, "cpu": _cpu}


async def main(modes: list[str], only: list[str]) -> None:
    await run_attacks(modes, only, ATTACKS)
    if not only or "cleanup" in only:
        print(f"[any] cleanup: {_cleanup()}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*command_line(__doc__, [*ATTACKS, "cleanup"])))
