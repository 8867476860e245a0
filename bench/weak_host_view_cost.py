"""What session 25's host view costs a weak run's start (root gateway): the child's setup between fork and exec
with the old covers (the gateway's folder and home) against the new ones (every folder at the top but the system's,
/dev down to five devices, staged on /proc) plus Landlock, in interleaved pairs of spawns of `true` (no interpreter:
the setup is what differs). Prints each side's median and the per-pair ratio's median and quartiles.

    PYTHONPATH=src nice -n 5 .venv/bin/python bench/weak_host_view_cost.py [pairs]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from tierwise.sandbox import bwrap, identity, landlock, weak

TRUE = os.path.realpath(shutil.which("true") or "/usr/bin/true")


def prepared(new: bool, folder: str, user: identity.User) -> tuple:
    keep = [folder, weak.prefix(), bwrap.interpreter()]
    if new:
        hide, shown = weak.masks(keep)
        stage = identity.PROC_STAGE
    else:  # main's masks: the gateway's folder and home only, staged in the temporary folder
        places = {os.path.realpath(os.path.expanduser("~")), os.path.realpath(os.getcwd())}
        hide = tuple(sorted(p for p in places if p != "/" and not any(k == p or k.startswith(p + "/") for k in keep)))
        shown, stage = tuple(k for k in keep if any(k.startswith(m + "/") for m in hide)), None
    switch = identity.switcher(user, identity.plan([weak.prefix(), *shown], user, hide, stage=stage),
                               identity.run_folder(folder, {}, 1 << 20, user))
    lock = weak.landlock_rules(folder, TRUE, []) if new else None
    return switch, lock


def spawn(switch: tuple, lock: landlock.Rules | None, folder: str) -> float:
    def child() -> None:
        identity.switch(switch)
        if lock is not None:
            landlock.restrict(lock)

    start = time.perf_counter()
    subprocess.run([TRUE], cwd=folder, preexec_fn=child, check=True)
    return time.perf_counter() - start


def compare(prepared, pairs: int) -> tuple[list[float], list[float], list[float], str]:  # noqa: ANN001
    """Interleaved pairs of spawns of the `prepared(False, ...)` and `prepared(True, ...)` setups (as root, switching
    to the sandbox's user): each side's times and the sorted per-pair ratios; also the folder used."""
    user = identity.target()
    assert user is not None, "run as root"
    folder = tempfile.mkdtemp(prefix="tierwise-sandbox-")
    os.chown(folder, user.uid, user.gid)
    try:
        old, new = prepared(False, folder, user), prepared(True, folder, user)
        a, b = [], []
        for i in range(pairs):
            for side in ((old, a), (new, b)) if i % 2 else ((new, b), (old, a)):
                side[1].append(spawn(*side[0], folder))
        return a, b, sorted(y / x for x, y in zip(a, b, strict=True)), folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(pairs: int) -> None:
    a, b, ratios, folder = compare(prepared, pairs)
    q = statistics.quantiles(ratios, n=4)
    print(f"{pairs} pairs: old median {statistics.median(a) * 1000:.2f} ms, new median "
          f"{statistics.median(b) * 1000:.2f} ms; per-pair ratio median {statistics.median(ratios):.2f} "
          f"(quartiles {q[0]:.2f}-{q[2]:.2f}); covers {len(weak.masks([folder])[0])}, "
          f"landlock ABI {landlock.abi()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
