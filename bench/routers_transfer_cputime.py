"""CPU time per routing decision (`score_text`) of transfer-router specs, interleaved request by request, on the
300 longest MMLU prompts; routers fitted on GSM8K + MT-Bench. CPU time of this process (time.process_time_ns),
not wall time: on a machine shared with other jobs wall time measures the queue (issue 22, session 17).

    PYTHONPATH=src TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/routers_transfer_cputime.py \\
        --routers "transfer-lsa,transfer-lsa:shape=...:subject_power=0.5:weigh=subject-oof" [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from routers_transfer import build  # bench/ is on sys.path when this script runs

from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers.embedding_cache import EmbeddingCache


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", default="transfer-lsa")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    train = concat([unit_scale(load_benchmark(n)) for n in ("gsm8k", "mt-bench")], "gsm8k+mt-bench")
    longest = sorted(load_benchmark("mmlu").prompts, key=len)[-300:]
    specs = [s for s in args.routers.split(",") if s]
    routers = [build(s, EmbeddingCache(None)).fit(train) for s in specs]
    times: list[list[float]] = [[] for _ in specs]
    for _ in range(args.rounds):
        for p in longest:
            for r, t in zip(routers, times, strict=True):
                t0 = time.process_time_ns()
                r.score_text(p)
                t.append((time.process_time_ns() - t0) / 1e6)
    print(f"CPU ms per decision (median of {len(times[0])}; the 300 longest MMLU prompts, median "
          f"{statistics.median(map(len, longest)):.0f} characters):")
    for s, t in zip(specs, times, strict=True):
        print(f"- {s}: {statistics.median(t):.3f} ms (p90 {statistics.quantiles(t, n=10)[-1]:.3f})")


if __name__ == "__main__":
    main()
