"""What the switch to the sandbox user (tierwise.sandbox.identity) adds between fork and exec, for
a gateway running as root: a fork whose child exits at once, with nothing, with the uid switch
alone, with the staging (mount namespace, covers, binds) the interpreter's folders need here, and
(the weak sandbox, session 23) with the run's folder a tmpfs and the rest of the host read-only.

    PYTHONPATH=src .venv/bin/python bench/sandbox_run_as_cost.py [--forks 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from tierwise.sandbox import bwrap, identity


def once(prepared: tuple | None) -> float:
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        identity.switch(prepared)
        os._exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - start


def main(forks: int) -> None:
    user = identity.target()
    if user is None:
        raise SystemExit("the gateway is not root here: there is no switch to measure")
    staging = identity.plan(bwrap.layout().binds, user)
    weak_staging = identity.plan([os.path.realpath(sys.base_prefix)], user)
    folder = tempfile.mkdtemp(prefix="tierwise-bench-")
    cases = [("fork only", None), ("fork + uid switch", identity.switcher(user, None)),
             ("fork + staging + uid switch", identity.switcher(user, staging)),
             ("weak: staging + uid switch", identity.switcher(user, weak_staging))]
    if hasattr(identity, "run_folder"):  # a tree with it
        os.chown(folder, user.uid, user.gid)
        with open(os.path.join(folder, "main.py"), "w") as fh:
            fh.write("pass")
        cases.append(("weak: staging + folder tmpfs + read-only host + uid switch",
                      identity.switcher(user, weak_staging, identity.run_folder(folder, {"main.py": b"pass"}, 64 << 20, user))))
    for name, prepared in cases * 2:
        times = [once(prepared) for _ in range(forks)]
        print(f"{name}: median {statistics.median(times) * 1e6:.0f} us, min {min(times) * 1e6:.0f} us")
    start = time.perf_counter()
    for _ in range(10000):
        identity.plan(bwrap.layout().binds, user)
    print(f"plan (remembered): {(time.perf_counter() - start) / 10000 * 1e6:.2f} us; staging: {staging}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--forks", type=int, default=300)
    main(parser.parse_args().forks)
