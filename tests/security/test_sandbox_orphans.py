"""A gateway process killed outright (`kill -9`, the OOM killer) left its weak run's folder (`tierwise-sandbox-*`,
on the disk or in /dev/shm) and its stage folder (`tierwise-stage-*`) behind, and nothing ever removed them:
test_sandbox_cross_run's killed gateway left a pair in /tmp at every run of the suite (review26a). Now each folder
is held by a lock its process's death drops, and the next process's first weak run removes the unheld ones
(tierwise.sandbox.orphans) — never a living process's."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tests.security.test_sandbox_cross_run import GATEWAY_WITH_A_WEAK_RUN, _children, _state
from tierwise.sandbox import orphans

NEXT_GATEWAY = """
import asyncio
from tierwise import sandbox
from tierwise.sandbox import bwrap, orphans, run_python, SandboxLimits
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
orphans.MIN_AGE_S = 0  # (the folders above were made a moment ago)
r = asyncio.run(run_python("print('ran')", limits=SandboxLimits(wall_s=60)))
assert r.ok and r.stdout.strip() == "ran", (r.stdout, r.stderr)
"""


def ours(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(orphans.PREFIXES))


def test_the_folders_of_a_gateway_killed_outright_are_removed_by_the_next_one() -> None:
    place = tempfile.mkdtemp(prefix="r-orphans-", dir="/tmp")
    os.chmod(place, 0o1777)  # a temporary folder (the run's user reaches its folder in it)
    env = {**os.environ, "TMPDIR": place}
    gw = subprocess.Popen([sys.executable, "-c", GATEWAY_WITH_A_WEAK_RUN], env=env)
    run: list[int] = []
    try:
        for _ in range(600):
            run = _children(gw.pid)
            if run:
                break
            time.sleep(0.1)
        assert run, "the weak run did not start"
        left = ours(place)
        assert any(n.startswith("tierwise-sandbox-") for n in left) and any(n.startswith("tierwise-stage-")
                                                                            for n in left), left
        assert orphans.sweep((place,), min_age_s=0) == [] and ours(place) == left  # a living process's: kept
        gw.kill()
        gw.wait()
        for _ in range(300):
            if not any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in run):
                break
            time.sleep(0.1)
        assert ours(place) == left  # killed outright: nothing of it removed them
        nxt = subprocess.run([sys.executable, "-c", NEXT_GATEWAY], env=env, capture_output=True, timeout=120)
        assert nxt.returncode == 0, nxt.stderr.decode()[-2000:]
        assert ours(place) == []  # before: the killed gateway's two folders, for good
    finally:
        gw.kill()
        for p in run:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, 9)
        shutil.rmtree(place, ignore_errors=True)
