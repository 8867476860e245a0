"""Per-run cost of the code sandbox: N sequential runs of a trivial script, after the first-use probe.

    PYTHONPATH=src .venv/bin/python bench/sandbox_overhead.py [--runs 20] [--module tierwise.sandbox]
    PYTHONPATH=src .venv/bin/python bench/sandbox_overhead.py --verify [--runs 20]
    PYTHONPATH=src .venv/bin/python bench/sandbox_overhead.py --weak [--runs 20] [--as-uid 61000] [--host-in-sight]

`--module tierwise.verifiers.sandbox` measures the old unshare jail on a checkout that still has it.
`--weak` measures the weak sandbox (bubblewrap hidden, `allow_weak`); with `--host-in-sight` as where no mount namespace
can be made (Landlock alone: a root gateway without CAP_SYS_ADMIN). `--verify` measures whole `python_code` verifications with tests (compile + run), alternating the
tests in the answer's process (`isolation: shared`) and in a checker process (`split`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import time


async def main(module: str, runs: int) -> None:
    m = importlib.import_module(module)
    start = time.perf_counter()
    await m.run_python("pass")  # the probe (or, weak, the filter's build) runs once per process
    print(f"first run {(time.perf_counter() - start) * 1000:.0f} ms")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        r = await m.run_python("print(sum(range(10)))")
        times.append(time.perf_counter() - start)
        assert r.ok, r.stderr
    print(f"{module}: {runs} runs, median {statistics.median(times) * 1000:.0f} ms, "
          f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; layers {', '.join(r.layers)}")


ANSWER = "```python\ndef add(a, b):\n    return a + b\n```"
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\nassert add(10, 5) == 15\n"


async def verify(runs: int) -> None:
    from tierwise.canonical import Message, Request, Response, TextBlock
    from tierwise.verifiers.base import VerifyContext
    from tierwise.verifiers.code import PythonCodeVerifier

    req = Request(model="m", messages=[Message("user", [TextBlock("add")])])
    resp = Response(id="r", model="m", content=[TextBlock(ANSWER)])
    verifiers = {mode: PythonCodeVerifier(tests=TESTS, isolation=mode) for mode in ("shared", "split")}
    times: dict[str, list[float]] = {mode: [] for mode in verifiers}
    for v in verifiers.values():
        await v(req, resp, VerifyContext())  # warm-up: the probe runs once per process
    for _ in range(runs):
        for mode, v in verifiers.items():
            start = time.perf_counter()
            verdict = await v(req, resp, VerifyContext())
            times[mode].append(time.perf_counter() - start)
            assert verdict.passed, verdict.reason
    for mode, t in times.items():
        print(f"python_code isolation={mode}: {runs} verifications, median {statistics.median(t) * 1000:.0f} ms, "
              f"min {min(t) * 1000:.0f} ms, max {max(t) * 1000:.0f} ms")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--module", default="tierwise.sandbox")
    p.add_argument("--verify", action="store_true", help="whole python_code verifications, shared vs split")
    p.add_argument("--weak", action="store_true", help="the weak sandbox (as without bubblewrap)")
    p.add_argument("--as-uid", type=int, help="(run as root) measure as a gateway of this uid, which is not root: "
                   "the interpreter's folders staged for it as the sandbox stages its own user")
    p.add_argument("--host-in-sight", action="store_true", help="(with --weak) as a gateway that can make no mount "
                   "namespace: the host not read-only, Landlock alone")
    a = p.parse_args()
    if a.as_uid is not None:
        import os
        import subprocess
        import sys

        import tierwise
        from tierwise.sandbox import identity

        user = identity.User(a.as_uid, a.as_uid)
        src = os.path.dirname(os.path.dirname(os.path.abspath(tierwise.__file__)))
        here = os.path.dirname(os.path.abspath(__file__))
        staged = identity.switcher(user, identity.plan([os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
                                                        src, here], user))
        argv = [x for i, x in enumerate(sys.argv[1:]) if x != "--as-uid" and sys.argv[i] != "--as-uid"]
        sys.exit(subprocess.run([sys.executable, os.path.abspath(__file__), *argv], cwd="/tmp",
                                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": src},
                                preexec_fn=lambda: identity.switch(staged)).returncode)
    if a.weak:
        from tierwise import sandbox
        from tierwise.sandbox import bwrap

        bwrap.bwrap_path = lambda: None
        sandbox.configure(allow_weak=True)
        if a.host_in_sight:
            from tierwise.sandbox import backend

            backend.weak_read_only_host = lambda: False
    asyncio.run(verify(a.runs) if a.verify else main(a.module, a.runs))
