"""Task triage: time per request on the CPU beyond the embedding, and agreement with a label mapping.

    nice -n 5 OMP_NUM_THREADS=1 .venv/bin/python bench/triage_latency.py [--n 600]

Prompts: a fixed sample of MMLU, GSM8K and all MT-Bench turn-1 prompts (../shared/data or
$TIERWISE_DATA). Timed in one process, interleaved round by round: lexical triage alone; triage with
prototype embeddings given the request's embedding (the shared all-MiniLM-L6-v2 vector, computed once
per request by whoever needs it: the cost *beyond* the embedding); and, for scale, the embedding itself.

Agreement: the benchmarks' labels mapped onto triage's types (MMLU and MT-Bench stem/humanities →
knowledge_question; GSM8K and MT-Bench math/reasoning → multi_step_reasoning; coding → short_code;
writing → creative_writing; roleplay → chat; extraction → extraction). A rough check, not a benchmark
of task-type classification: real traffic has types these data lack.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tierwise.canonical import Message, Request, TextBlock
from tierwise.evaluation.loaders import load_benchmark
from tierwise.learning.triage import Triager

MT_MAP = {"stem": "knowledge_question", "humanities": "knowledge_question", "math": "multi_step_reasoning",
          "reasoning": "multi_step_reasoning", "coding": "short_code", "writing": "creative_writing",
          "roleplay": "chat", "extraction": "extraction"}


def sample(n: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(0)
    mmlu, gsm, mt = load_benchmark("mmlu"), load_benchmark("gsm8k"), load_benchmark("mt-bench")
    k = max(1, (n - len(mt)) // 2)
    prompts, labels = [], []
    for i in rng.choice(len(mmlu), k, replace=False):
        prompts.append(mmlu.prompts[i])
        labels.append("knowledge_question")
    for i in rng.choice(len(gsm), k, replace=False):
        prompts.append(gsm.prompts[i])
        labels.append("multi_step_reasoning")
    for p, s in zip(mt.prompts, mt.subjects, strict=True):
        prompts.append(p)
        labels.append(MT_MAP.get(s, "chat"))
    return prompts, labels


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from tierwise.routers.features import Embedder

    prompts, labels = sample(args.n)
    reqs = [Request(model="m", messages=[Message("user", [TextBlock(p)])]) for p in prompts]
    enc = Embedder()
    lex = Triager()
    emb = Triager(embed=enc.encode)
    vecs = enc.encode(prompts)  # warm the model and the prototypes before timing
    emb.classify(reqs[0], vector=vecs[0])
    t_lex: list[float] = []
    t_proto: list[float] = []
    t_embed: list[float] = []
    t_plan: list[float] = []
    from tierwise.learning.loop import LearningLoop

    loop = LearningLoop("bench")
    for _ in range(args.rounds):
        for i, y in enumerate(labels):  # the reflective route's per-request decision after triage
            t0 = time.perf_counter()
            loop.plan(y, f"req-{_}-{i}")
            t_plan.append((time.perf_counter() - t0) * 1e3)
        for r, v in zip(reqs, vecs, strict=True):
            t0 = time.perf_counter()
            lex.classify(r)
            t1 = time.perf_counter()
            emb.classify(r, vector=v)
            t2 = time.perf_counter()
            t_lex.append((t1 - t0) * 1e3)
            t_proto.append((t2 - t1) * 1e3)
        for p in prompts[:100]:
            t0 = time.perf_counter()
            enc.encode([p])
            t_embed.append((time.perf_counter() - t0) * 1e3)
    acc_lex = statistics.mean(lex.classify(r).task_type == y for r, y in zip(reqs, labels, strict=True))
    acc_emb = statistics.mean(emb.classify(r, vector=v).task_type == y
                              for r, v, y in zip(reqs, vecs, labels, strict=True))
    print(f"{len(prompts)} prompts x {args.rounds} rounds (interleaved)")
    print("| triage | p50 ms | p95 ms | agreement with the label mapping |")
    print("|---|---|---|---|")
    print(f"| lexical only | {pct(t_lex, 50):.3f} | {pct(t_lex, 95):.3f} | {acc_lex * 100:.1f}% |")
    print(f"| lexical + prototypes, beyond the embedding | {pct(t_proto, 50):.3f} | {pct(t_proto, 95):.3f} | "
          f"{acc_emb * 100:.1f}% |")
    print(f"| reflective route's plan (boundary lookup + schedule), after triage | {pct(t_plan, 50):.4f} | "
          f"{pct(t_plan, 95):.4f} | |")
    print(f"| (the embedding itself, one prompt) | {pct(t_embed, 50):.3f} | {pct(t_embed, 95):.3f} | |")


if __name__ == "__main__":
    main()
