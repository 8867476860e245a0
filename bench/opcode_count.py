"""Bytecodes per request, per Python function, of the `--same-process` gateway of
bench/budgets_overhead.py (route `main`: budgets + rate limits + exact cache, memory, every request a
new question; route `plain`: none), at 50 concurrent clients: where the covered route's added work
is, function by function and line by line. A count, so the machine's load does not change it; the
tracer makes the gateway ~20x slower, so requests overlap more than in a real run (settlements land
later: a little more of the paths taken at a lease's or a minute's end).

    PYTHONPATH=src .venv/bin/python bench/opcode_count.py --requests 1000 --fill 1000 [--src ../other/src]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from budgets_overhead import same_process_config, send_concurrently  # noqa: E402
from gateway_overhead import Proc, serve_tierwise, start_stub  # noqa: E402


def opcode_window(gw: Proc, log: Path, send: Callable[[], None]) -> dict:
    """The bytecodes (and calls) per function, and the probed lines, that the gateway `gw` (served with
    bench/opcode_probe on its PYTHONPATH and TW_OP_LOG=`log`) executes while `send()` runs, and what the
    last request left to the loop in the half second after it."""
    before = set(log.parent.glob(f"{log.name}.*"))
    os.kill(gw.p.pid, signal.SIGUSR1)
    time.sleep(0.3)
    send()
    time.sleep(0.5)
    os.kill(gw.p.pid, signal.SIGUSR2)
    new: set[Path] = set()
    for _ in range(100):
        time.sleep(0.2)
        new = set(log.parent.glob(f"{log.name}.*")) - before
        if new:
            break
    if not new:
        raise RuntimeError(f"the gateway wrote no count to {log}.*")
    time.sleep(0.5)  # written whole
    return json.loads(new.pop().read_text())


def probe_env(src: Path, log: Path) -> dict[str, str]:
    """The environment that loads bench/opcode_probe into a gateway serving the package in `src`."""
    return {"PYTHONPATH": f"{src}{os.pathsep}{HERE / 'opcode_probe'}", "TW_OP_LOG": str(log)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="counted requests per route")
    ap.add_argument("--fill", type=int, default=1000, help="covered requests first, uncounted")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--src", type=Path, default=HERE.parent / "src", help="serve the package in this folder "
                    "(another checkout's src/, for a before/after)")
    a = ap.parse_args()
    n = a.requests
    stub = start_stub(0.0)
    work = Path(tempfile.mkdtemp(prefix="tierwise-opcount-"))
    log = work / "ops"
    src = a.src.resolve()
    gw = serve_tierwise(work, same_process_config(stub.port, work, "memory", True, "x"), src=src, name="tierwise-opcount",
                        extra_env=probe_env(src, log))
    url = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
    nonce = uuid.uuid4().hex[:8]
    res: dict[str, dict] = {}
    try:
        for r in ("main", "plain"):
            send_concurrently(url, r, 200, f"{nonce}-warm-{r}", 50)
        if a.fill:
            send_concurrently(url, "main", a.fill, f"{nonce}-fill", 50)
        for r in ("main", "plain"):
            res[r] = opcode_window(gw, log, lambda r=r: send_concurrently(url, r, n, f"{nonce}-{r}", 50))  # type: ignore[misc]
    finally:
        gw.stop()
        stub.stop()
    m, p = res["main"]["functions"], res["plain"]["functions"]
    total_m, total_p = sum(v[0] for v in m.values()) / n, sum(v[0] for v in p.values()) / n
    print(f"bytecodes per request: covered {total_m:,.0f}, plain {total_p:,.0f}, added {total_m - total_p:+,.0f}\n")
    print("| added | covered | plain | calls per request covered / plain | function |")
    print("|---:|---:|---:|---|---|")
    rows = sorted(set(m) | set(p), key=lambda k: -(m.get(k, [0, 0])[0] - p.get(k, [0, 0])[0]))
    for k in rows[:a.top]:
        x, y = m.get(k, [0, 0]), p.get(k, [0, 0])
        print(f"| {(x[0] - y[0]) / n:+.1f} | {x[0] / n:.1f} | {y[0] / n:.1f} | {x[1] / n:.2f} / {y[1] / n:.2f} | {k} |")
    lines: dict[str, dict[int, float]] = collections.defaultdict(dict)
    for f, ln, k in res["main"]["lines"]:
        lines[f][ln or 0] = k / n
    print("\ncovered route, bytecodes per request by line (budgets and cache modules):")
    for f in sorted(lines):
        text = (src / f).read_text().splitlines()
        print(f"== {f}")
        for ln in sorted(lines[f]):
            if lines[f][ln] >= 1.0:
                print(f"{lines[f][ln]:7.1f} {ln:4d} {text[ln - 1].strip()[:110] if ln else ''}")


if __name__ == "__main__":
    main()
