"""Redis time of the budget store's admission script (redis_scripts.SCRIPT) per call, this tree against another's
(session 32, review32a): the script is loaded from `--src` and from `--baseline-src`, and both run alternately on the
shared Redis's db 10 under a prefix of the run's own (deleted after), with the same arguments: per call one settlement
and one admission of a day budget (USD), a rolling budget of 60 slots, and a rate limit. Reported: Redis's own
`cmdstat_evalsha` microseconds per call (INFO commandstats, which other clients' EVALSHA calls on the server add to),
and the client's wall time per call; medians of `--rounds` rounds, and the ratios this / baseline.

    PYTHONPATH=src .venv/bin/python bench/budget_script_cost.py --baseline-src /tmp/base32_review32a/src
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent


def script_of(src: str) -> str:
    spec = importlib.util.spec_from_file_location("rs_" + uuid.uuid4().hex, Path(src) / "tierwise/budgets/redis_scripts.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return str(mod.SCRIPT)


def evalsha_usec(r: redis.Redis) -> tuple[int, float]:
    s = r.info("commandstats").get("cmdstat_evalsha", {})
    return int(s.get("calls", 0)), float(s.get("usec", 0))


def run(r: redis.Redis, sha: str, p: str, n: int, start: int) -> tuple[float, float]:
    c0, u0 = evalsha_usec(r)
    t0 = time.perf_counter()
    minute = 29_000_000
    for i in range(start, start + n):
        rid, prev = f"r{i}", f"r{i - 1}"
        settle = (f"{prev} 3 1 {p}b:day 20000 0.001 100 0.0009 90 90000 {p}b:roll 20000 0.001 100 0.0009 90 4000 "
                  f"{p}b:roll2 20000 0.001 100 0.0009 90 4000 {p}rl:g {minute} 90")
        admit = (f"{rid} {time.time() + 600!r} 2 1 {p}b:day 20000 1 1000.0 -1.0 0.001 100 90000 "
                 f"{p}b:roll 20000 60 1000.0 -1.0 0.001 100 4000 {p}rl:g 100000.0 -1.0 100")
        args = [repr(time.time()), p + "reservations", p + "res:", p + "settled:", 600, "0", minute, "0.5",
                1 if i > start else 0, "0", p + "epoch", "", "m"]
        args += ([settle] if i > start else []) + [admit]
        r.evalsha(sha, 0, *args)
    wall = (time.perf_counter() - t0) / n * 1e6
    c1, u1 = evalsha_usec(r)
    return (u1 - u0) / max(1, c1 - c0), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--baseline-src", required=True)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    r = redis.Redis.from_url("redis://127.0.0.1:6379/10")
    shas = {"this": r.script_load(script_of(a.src)), "baseline": r.script_load(script_of(a.baseline_src))}
    res: dict[str, list[tuple[float, float]]] = {k: [] for k in shas}
    prefixes = []
    try:
        for k in range(a.rounds):
            for name in (("this", "baseline") if k % 2 == 0 else ("baseline", "this")):
                p = f"tierwise-bench-script:{uuid.uuid4().hex[:10]}:"
                prefixes.append(p)
                res[name].append(run(r, shas[name], p, a.calls, 0))
    finally:
        for p in prefixes:
            keys = list(r.scan_iter(match=p + "*", count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i:i + 500])
    med = {k: (statistics.median(x for x, _ in v), statistics.median(y for _, y in v)) for k, v in res.items()}
    for k, (u, w) in med.items():
        print(f"{k:9s} redis {u:7.2f} us/call   client wall {w:7.2f} us/call")
    print(f"ratio this/baseline: redis {med['this'][0] / med['baseline'][0]:.3f}   wall {med['this'][1] / med['baseline'][1]:.3f}")


if __name__ == "__main__":
    main()
