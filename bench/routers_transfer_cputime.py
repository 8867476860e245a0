"""Time per routing decision (`score_text`) of router specs, interleaved request by request, on the 300 longest
MMLU prompts; routers fitted on GSM8K + MT-Bench. Both the CPU time of this process (time.process_time_ns: on a
machine shared with other jobs wall time measures the run queue, issue 22, session 17) and the wall time
(time.perf_counter_ns: the issue's 2 ms target), each beside a plain reference timed in the same interleaved
rounds — a fixed piece of Python on the same prompt (lower-case it, split it into words with one regular
expression, CRC-32 every word), which no router change touches — so a figure reads as a ratio to the reference
as well as in ms, and a slower or busier machine moves both. The prompt's token hashes (cached for the last few
prompts, so that a router's two feature sets hash a request once) are cleared before every call: session 17's
version of this script let every router after the first reuse them, which read as 1.3 ms of "noise".

    PYTHONPATH=src TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/routers_transfer_cputime.py \\
        --routers "transfer-lsa,stack-lsa" [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
import zlib

from routers_transfer import build  # bench/ is on sys.path when this script runs

from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers.embedding_cache import EmbeddingCache
from tierwise.routers.features import token_hashes

WORD = re.compile(r"\w+")


def reference(prompt: str) -> int:
    """The plain reference: a fixed amount of ordinary Python string work per prompt."""
    return sum(map(zlib.crc32, map(str.encode, WORD.findall(prompt.lower()))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", default="transfer-lsa")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    train = concat([unit_scale(load_benchmark(n)) for n in ("gsm8k", "mt-bench")], "gsm8k+mt-bench")
    longest = sorted(load_benchmark("mmlu").prompts, key=len)[-300:]
    specs = [s for s in args.routers.split(",") if s]
    calls = [build(s, EmbeddingCache(None)).fit(train).score_text for s in specs] + [reference]
    names = specs + ["plain reference"]
    cpu: list[list[float]] = [[] for _ in calls]
    wall: list[list[float]] = [[] for _ in calls]
    for _ in range(args.rounds):
        for p in longest:
            for f, c, w in zip(calls, cpu, wall, strict=True):
                token_hashes.cache_clear()  # no router reuses the hashes of the one before it on this prompt
                c0, w0 = time.process_time_ns(), time.perf_counter_ns()
                f(p)
                w.append((time.perf_counter_ns() - w0) / 1e6)
                c.append((time.process_time_ns() - c0) / 1e6)
    ref_cpu, ref_wall = statistics.median(cpu[-1]), statistics.median(wall[-1])
    print(f"ms per decision, p50 of {len(cpu[0])} (p90); the 300 longest MMLU prompts, median "
          f"{statistics.median(map(len, longest)):.0f} characters; interleaved with the plain reference:\n")
    print("| spec | CPU ms p50 (p90) | CPU ÷ reference | wall ms p50 (p90) | wall ÷ reference |\n|---|---|---|---|---|")
    for s, c, w in zip(names, cpu, wall, strict=True):
        print(f"| {s} | {statistics.median(c):.3f} ({statistics.quantiles(c, n=10)[-1]:.3f}) | "
              f"{statistics.median(c) / ref_cpu:.1f} | {statistics.median(w):.3f} ({statistics.quantiles(w, n=10)[-1]:.3f}) | "
              f"{statistics.median(w) / ref_wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
