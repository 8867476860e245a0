"""Routers on RouteLLM's GPT-4 vs Mixtral data: APGR, CPT(50%), CPT(80%) and $/1k queries, beside
random and prompt-length, in every setting the issue asks for; plus decision time per request.

    .venv/bin/python bench/routers_benchmark.py [--routers linear,mf-lsa,stack] [--emb-cache DIR]

`--emb-cache DIR` keeps the prompt embeddings in DIR/emb_<benchmark>.npy (computed on first use),
so later runs skip the embedding model. The `stack` router picks its own hyper-parameters and
stacking weights by an inner CV on each outer training split; nothing is tuned on a test fold.

Settings: (a) in-domain 5-fold CV by question (easier than RouteLLM's setting); (b) cross-benchmark
transfer: train on the other benchmarks, test on this one (closer to RouteLLM, whose routers never
saw these prompts); MT-Bench is only ever tested in setting (b). Post-hoc (cascade) scorers see
the weak model's answer, so they are reported apart. Every in-domain APGR comes with a 95%
bootstrap interval over resampled queries (`--ci` resamples). Prints markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset, concat
from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.metrics import summarize
from tierwise.evaluation.replay import evaluate, markdown_table
from tierwise.routers import make_router
from tierwise.routers.features import embedding_available


def embedding_cache(datasets: list[OutcomeDataset], cache_dir: Path | None) -> dict[str, np.ndarray] | None:
    if not embedding_available():
        return None
    from tierwise.routers.features import Embedder

    cache: dict[str, np.ndarray] = {}
    enc = Embedder()
    for d in datasets:
        base = d.name.split("-no-")[0]
        path = cache_dir / f"emb_{base}.npy" if cache_dir else None
        if path is not None and path.exists():
            x = np.load(path)
            full = load_benchmark(base)
            if len(x) == len(full):
                cache.update(zip(full.prompts, x, strict=True))
                continue
        if path is not None and d.name == base:  # the full benchmark: encode once, keep for later runs
            x = enc.encode(d.prompts)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, x)
            cache.update(zip(d.prompts, x, strict=True))
            continue
        missing = [p for p in d.prompts if p not in cache]
        if missing:
            cache.update(zip(missing, enc.encode(missing), strict=True))
    return cache


def needs_embeddings(spec: str) -> bool:
    return "embedding" in spec or spec == "stack"


def transfer(train: OutcomeDataset, test: OutcomeDataset, spec: str, cache: dict[str, np.ndarray] | None) -> float:
    r = make_router(spec, embedding_cache=cache)
    r.fit(train)
    return summarize(spec, r.score(test), test.strong, test.weak).apgr


def decision_times(train: OutcomeDataset, specs: list[str], cache: dict[str, np.ndarray] | None,
                   n: int = 500) -> dict[str, float]:
    """p50 milliseconds of `score_text` (what the learned route runs per request) for routers fitted on all
    of `train`, on its first `n` prompts. Embedding routers read the prompt's vector from the cache, so the
    time excludes the embedding model (which costs the same for every embedding router)."""
    out = {}
    prompts = train.prompts[:n]
    for spec in specs:
        r = make_router(spec, embedding_cache=cache)
        r.fit(train)
        if hasattr(r, "inner_apgr"):
            print(f"- {spec} fitted on all of {train.name}: chosen by inner CV {r.params}, stacking weights "
                  f"{dict(zip(r.members, np.round(r.weights / r.weights.sum(), 3).tolist(), strict=True))}")
        times = []
        for p in prompts:
            t0 = time.perf_counter()
            r.score_text(p)
            times.append((time.perf_counter() - t0) * 1000)
        out[spec] = statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", default="linear,mf-lsa,knn-embedding,mf-embedding,ensemble-embedding,stack")
    ap.add_argument("--emb-cache", type=Path, default=None, help="folder with emb_<benchmark>.npy to reuse")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--timing-only", action="store_true", help="only the decision time per request")
    ap.add_argument("--ci", type=int, default=1000, help="bootstrap resamples for each APGR's 95%% interval (0: none)")
    args = ap.parse_args()
    specs = [s for s in args.routers.split(",") if s]
    mmlu, nohsm, gsm, mt = (load_benchmark(n) for n in ("mmlu", "mmlu-no-hsm", "gsm8k", "mt-bench"))
    use_emb = any(needs_embeddings(s) for s in specs)
    cache = embedding_cache([mmlu, gsm, mt], args.emb_cache) if use_emb else None
    if use_emb and cache is None:
        print("(embeddings extra not installed: embedding routers skipped)")
        specs = [s for s in specs if not needs_embeddings(s)]

    if args.timing_only:
        return print_decision_times(mmlu, specs, cache)
    print("## (a) In-domain, 5-fold CV by question\n")
    for d in (mmlu, nohsm, gsm):
        t0 = time.time()
        rows = evaluate(d, specs, folds=args.folds, embedding_cache=cache, oracle=True, ci_rounds=args.ci)
        print(markdown_table(d, rows))
        print(f"\n({time.time() - t0:.0f} s)\n")
    print("## Post-hoc scorer (cascade: the weak model always answers first), GSM8K, 5-fold CV\n")
    print(markdown_table(gsm, evaluate(gsm, ["posthoc"], folds=args.folds, ci_rounds=args.ci)) + "\n")

    print("## (b) Cross-benchmark transfer (train on the others, test here; APGR)\n")
    print("| router | MMLU (train GSM8K) | GSM8K (train MMLU) | MT-Bench (train MMLU+GSM8K) |\n|---|---|---|---|")
    both = concat([mmlu, gsm], "mmlu+gsm8k")
    rng_row = [summarize("r", np.random.default_rng(0).random(len(d)), d.strong, d.weak).apgr for d in (mmlu, gsm, mt)]
    len_row = [summarize("l", np.array([len(p) for p in d.prompts], float), d.strong, d.weak).apgr
               for d in (mmlu, gsm, mt)]
    print("| random | " + " | ".join(f"{x:.3f}" for x in rng_row) + " |")
    print("| prompt-length | " + " | ".join(f"{x:.3f}" for x in len_row) + " |")
    for spec in specs:
        vals = [transfer(gsm, mmlu, spec, cache), transfer(mmlu, gsm, spec, cache), transfer(both, mt, spec, cache)]
        print(f"| {spec} | " + " | ".join(f"{x:.3f}" for x in vals) + " |")

    print_decision_times(mmlu, specs, cache)


def print_decision_times(mmlu: OutcomeDataset, specs: list[str], cache: dict[str, np.ndarray] | None) -> None:
    print("\n## Decision time per request (score_text, p50 ms, 500 MMLU prompts, embedding model excluded)\n")
    timed = ["linear", "knn-lsa", "mf-lsa", "ensemble"] + [s for s in specs if s.startswith("stack")]
    for spec, ms in decision_times(mmlu, timed, cache).items():
        print(f"- {spec}: {ms:.3f} ms")


if __name__ == "__main__":
    main()
