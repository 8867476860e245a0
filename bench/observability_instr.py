"""What observing a request costs in process, in instructions (callgrind): deterministic, so other processes
on a shared machine do not move it.

One process builds a gateway per variant (no sockets, no event loop) and runs, per request, what the gateway
runs for a request shaped like bench/observability_overhead.py's: a context made, a rules decision and one
upstream call recorded on its trace, `Observer.inject` for that call (when tracing), the call's result, and
`Observer.finished` (the metrics update, the spans written and queued; nothing is exported). Each variant is
counted over `--windows` windows of `-n` requests, switched on and off with callgrind_control; a window of
zero requests gives the fixed cost of switching, which is taken off. Reported: instructions per request (the
smallest window and the median), and against `off`.

    python bench/observability_instr.py                       # runs itself under valgrind
    python bench/observability_instr.py -n 2000 --windows 3 --variants off,metrics,metrics+tracing

Variants: off; metrics; metrics+tracing; and the same with a C part switched off in process (`-py`:
metrics in Python; `+pywriter`: spans written in Python) where this tree has them. Run it with another
tree's sources on PYTHONPATH (`--src`) to compare trees.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACING = {"endpoint": "http://127.0.0.1:9/v1/traces", "interval": 60, "queue_size": 10**6, "batch_size": 10**5}
VARIANTS = {
    "off": {},
    "metrics": {"metrics": {"enabled": True}},
    "metrics-py": {"metrics": {"enabled": True}},
    "metrics+tracing": {"metrics": {"enabled": True}, "tracing": TRACING},
    "metrics-py+tracing-pywriter": {"metrics": {"enabled": True}, "tracing": TRACING},
}


def build(name: str, tmp: Path):  # noqa: ANN201
    from tests.harness import make_config, two_tier_config
    from tierwise.server.build import build_gateway

    routes = {"main": {"policy": "rules", "rules": [{"match": {"model": "*sonnet*"}, "target": "frontier"}],
                       "default": "local"}}
    cfg = two_tier_config("http://127.0.0.1:1", "http://127.0.0.1:2", routes=routes,
                          observability=VARIANTS[name], ledger={"enabled": False})
    g = build_gateway(make_config(cfg, tmp / name))
    o = g.observer
    if name.startswith("metrics-py"):
        if not hasattr(o.metrics, "use_native"):
            return None
        o.metrics.use_native(False)
    if name.endswith("-pywriter"):
        if not hasattr(o.exporter.encoder, "use_native"):
            return None
        o.exporter.encoder.use_native(False)
    if o.exporter is not None:
        o.exporter._trigger = 10**9  # as once its exporting task runs (no event loop here: no task)
    return g


def requests(g, n: int) -> None:  # noqa: ANN001
    from tierwise.canonical import Message, Request, TextBlock, Usage

    req = Request(model="main", messages=[Message(role="user", content=[TextBlock("hi")])])
    o = g.observer
    tracing = o.tracing
    for _ in range(n):
        ctx = g.context("main", "req_0123456789abcdef", "openai", "main")
        ctx.trace.decide("rules", "no rule matched -> default")
        s = ctx.trace.call("local", model="qwen-local", provider="localsrv", locality="local")
        if tracing:
            o.inject(ctx, req, {})
        s.ok, s.status, s.usage, s.cost, s.latency_ms = True, 200, Usage(12, 30), None, 1.25
        o.finished(ctx, req, status=200, stream=False, latency_ms=2.5, ttft_ms=None, error=None)


def callgrind(cmd: str) -> None:
    subprocess.run(["callgrind_control", cmd[:2], *cmd[2:].split(), str(os.getpid())], capture_output=True,
                   check=True)


def inside(a: argparse.Namespace, out: Path) -> None:
    """Under callgrind (counting off until switched on): the windows, each dumped to its own file."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-obs-instr-"))
    for vi, name in enumerate(a.variants.split(",")):
        g = build(name, tmp)
        if g is None:
            print(f"{name}: not in this tree", file=sys.stderr)
            continue
        requests(g, 300)  # warm: shapes, memos, label children
        for w in range(-1, a.windows):
            n = 0 if w < 0 else a.n
            exp = g.observer.exporter
            if exp is not None:
                exp.pending.clear()
                exp.ready.clear()
                exp.pending_n = exp.waiting = 0
            gc.collect()
            callgrind("-i on")
            requests(g, n)
            callgrind(f"-d v{vi}n{n}w{w + 1}")  # (callgrind keeps letters and digits of a dump's name)
            callgrind("-i off")
        print(f"{name}: done", file=sys.stderr)


def totals(prefix: Path, names: list[str]) -> dict[str, list[tuple[int, int]]]:
    """{variant: [(requests, instructions)]} from the dumps (`totals:`; callgrind's `summary:` is wrong after a
    switch)."""
    import re

    found: dict[str, list[tuple[int, int]]] = {}
    for f in sorted(prefix.parent.glob(prefix.name + "*")):
        label, total = None, 0
        for line in f.read_text(errors="replace").splitlines():
            m = re.match(r"desc: Trigger: dump v(\d+)n(\d+)w(\d+)", line)
            if m:
                label = (names[int(m.group(1))], int(m.group(2)))
            if line.startswith("totals:"):
                total = int(line.split()[1])
        if label is not None:
            found.setdefault(label[0], []).append((label[1], total))
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000, help="requests per window")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--src", default=str(ROOT / "src"), help="the tierwise sources to count (another tree's src)")
    ap.add_argument("--inside", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.inside:
        sys.path[:0] = [a.src, str(ROOT)]
        inside(a, Path(a.inside))
        return
    out = Path(tempfile.mkdtemp(prefix="bench-obs-instr-cg-")) / "cg.out"
    env = dict(os.environ, PYTHONPATH=f"{a.src}:{ROOT}")
    subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                    sys.executable, __file__, "-n", str(a.n), "--windows", str(a.windows), "--variants", a.variants,
                    "--src", a.src, "--inside", str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
    found = totals(out, a.variants.split(","))
    per: dict[str, tuple[float, float]] = {}
    for name, rows in found.items():
        fixed = min(t for n, t in rows if n == 0)
        counts = [(t - fixed) / n for n, t in rows if n > 0]
        per[name] = (min(counts), statistics.median(counts))
        print(f"{name:30} windows: {', '.join(f'{c / 1000:.2f}' for c in counts)} k", file=sys.stderr)
    print(f"\ninstructions per request in process (callgrind), {a.windows} windows of {a.n} requests, src={a.src}\n")
    print("| variant | k instr / request: smallest window (median) | added vs off |")
    print("|---|---|---|")
    base = per.get("off", (0.0, 0.0))[0]
    for name, (lo, med) in per.items():
        print(f"| {name} | {lo / 1000:.1f} ({med / 1000:.1f}) | {(lo - base) / 1000:+.1f} k |")


if __name__ == "__main__":
    main()
