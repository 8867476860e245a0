"""What a restart costs an adapting `learned` route (routers/route_memory.py, routers/adapt.py): the state file's
size with and without the adaptation's own part (fit indices and the adapted threshold's window), the restore (which
fits again, synchronously, as the route is built), and the one-time cleaning of a file whose prompts never passed
the privacy boundary (`RouteMemory.clean_prompts`). GSM8K prompts as the judged pairs' prompts; CPU seconds.

    PYTHONPATH=src TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/adapt_restart_cost.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.online import JudgedPair, OnlineValidator
from tierwise.routers.adapt import LiveAdapter
from tierwise.routers.route_memory import RouteMemory

PRIVACY = """
providers: {p: {kind: openai, base_url: "http://127.0.0.1:9/v1", locality: local}}
models: {m: {provider: p, model: m}}
routes: {main: {policy: fallback, targets: [m]}}
privacy: {ner: {enabled: false}, classes: {pii: {}, secrets: {}}, policy: {pii: redact, secrets: block}}
"""


def parts(pairs_n: int, window: int, traffic: int) -> tuple[OnlineValidator, LiveAdapter]:
    v = OnlineValidator(window=pairs_n, min_pairs=50, rounds=50, every=10**9, prompts_kept=pairs_n)
    a = LiveAdapter(v, 0.3, min_pairs=100, window=pairs_n, every=10**9, refit_window=window, refit_min=100)
    return v, a


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--window", type=int, default=500, help="the adapted threshold's window (refit_window)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    gsm = load_benchmark("gsm8k")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(gsm.prompts))
    judged, traffic = order[:args.pairs], order[args.pairs:args.pairs + args.window]
    v, a = parts(args.pairs, args.window, len(traffic))
    for i in judged:
        v.add(JudgedPair(len(gsm.prompts[i]), float(rng.random()), 0.5, float(gsm.strong[i]), float(gsm.weak[i]),
                         f"k{i % 4}", gsm.prompts[i]))
    assert a.refit()
    for i in traffic:  # the adapted threshold's window: recent traffic's adapted scores
        a.decide(gsm.prompts[i], float(rng.random()), f"k{i % 4}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.json"
        m = RouteMemory(path, "r", 0.3, validator=v, adapter=a)
        m.write(m.dump())
        with_adapt = path.stat().st_size
        data = json.loads(path.read_text())
        without = len(json.dumps({k: x for k, x in data.items() if k != "adapt"}, separators=(",", ":"),
                                 ensure_ascii=False).encode())
        print(f"state file: {with_adapt:,} bytes with the adaptation's part, {without:,} without "
              f"(+{with_adapt - without:,}; {args.pairs} pairs with prompts, window {args.window})")
        for rep in range(args.repeat):
            v2, a2 = parts(args.pairs, args.window, len(traffic))
            t = time.process_time()
            assert RouteMemory(path, "r", 0.3, validator=v2, adapter=a2).restore() and a2.live is not None
            same = time.process_time() - t
            assert a2.live[1].threshold == a.live[1].threshold  # type: ignore[union-attr]
            old = path.with_name("old.json")
            old.write_text(json.dumps({k: x for k, x in data.items() if k != "adapt"}))
            v3, a3 = parts(args.pairs, args.window, len(traffic))
            t = time.process_time()
            m3 = RouteMemory(old, "r", 0.3, validator=v3, adapter=a3)
            assert m3.restore()
            a3.refit()  # what `_build` does for a file without the adaptation's part (and did for every file)
            seeds = time.process_time() - t
            print(f"round {rep + 1}: restore with the same fit and window {same:.3f} s CPU; restore + refit on all "
                  f"pairs (re-seeded) {seeds:.3f} s")
            from tierwise.config import parse_config
            from tierwise.privacy.boundary import Boundary

            cfg = parse_config(PRIVACY)
            boundary = Boundary(cfg.privacy, base_dir=tmp, routes=set())
            t = time.process_time()
            n = m3.clean_prompts(boundary)
            clean = time.process_time() - t
            boundary.close()
            print(f"round {rep + 1}: cleaning {n} restored prompts, refit and rewrite at start: {clean:.3f} s CPU")


if __name__ == "__main__":
    main()
