"""Routers that transfer (issue 22): leave-one-benchmark-out (LOBO) on RouteLLM's GPT-4 vs Mixtral
data — train on two of MMLU, GSM8K and MT-Bench, test on the third — for every router, beside
random and prompt length; in-domain 5-fold CV for the routers asked (`--in-domain`); and the
decision time per request on long prompts.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/routers_transfer.py --emb-cache /tmp/tw-emb-cache \
        [--routers linear,transfer-lsa,transfer] [--tests mmlu,gsm8k,mt-bench] [--in-domain transfer]

A spec may carry the router's keyword arguments (`transfer-lsa:source_power=1`, `transfer-lsa:members=a+b`).

Training parts are put on one [0, 1] outcome scale (MT-Bench grades by their range) and, for the
`transfer` routers, weighted so each benchmark counts equally. Embeddings come from the on-disk
cache (`--emb-cache`), computed once. Each APGR of a held-out benchmark comes with a 95% bootstrap
interval over its queries and the paired interval of the lead over random (is it above random with
confidence?). Prints markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np

from tierwise.evaluation.baselines import prompt_length_scores, random_scores
from tierwise.evaluation.cv import cross_val_scores
from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.metrics import apgr, bootstrap_apgr, routing_curve
from tierwise.routers import make_router
from tierwise.routers.embedding_cache import EmbeddingCache

NAMES = ("mmlu", "gsm8k", "mt-bench")


def cell(scores: np.ndarray, d, rounds: int) -> str:
    a = apgr(routing_curve(scores, d.strong, d.weak))
    if not rounds:
        return f"{a:.3f}"
    ci = bootstrap_apgr(scores, d.strong, d.weak, rounds=rounds)
    lead = bootstrap_apgr(scores, d.strong, d.weak, against=random_scores(d, 0), rounds=rounds)
    star = "" if lead.low > 0 else (" ↓" if lead.high < 0 else " ~")  # ~: not above random with confidence
    return f"{a:.3f} ({ci.low:.3f}–{ci.high:.3f}){star}"


def build(spec: str, cache: EmbeddingCache):
    """`make_router(spec)`; a spec may carry keyword arguments after `:`, e.g.
    `transfer-lsa:source_power=1:members=tfidf-logit-wf+tfidf-ridge-gain` (members and shape counts joined by `+`;
    `weigh=`, `offsets=`, `words=`, `strong=` take a word)."""
    name, *opts = spec.split(":")
    kw: dict = {}
    for o in opts:
        k, v = o.split("=", 1)
        kw[k] = tuple(v.split("+")) if k in ("members", "shape") else v if k in ("weigh", "offsets", "words", "strong") else float(v)
    return make_router(name, embedding_cache=cache, **kw)


def warm(cache: EmbeddingCache, prompts: list[str], chunk: int = 512) -> None:
    """Embed every distinct prompt once into `cache`, in chunks of similar length (a stop loses one chunk;
    the model truncates each prompt to its maximum sequence length)."""
    from tierwise.routers.dense import EmbeddingVectors

    vectors = EmbeddingVectors(cache=cache)
    todo = sorted(set(prompts), key=len)
    t0 = time.time()
    for s in range(0, len(todo), chunk):
        vectors.encode(todo[s:s + chunk])
        print(f"<!-- embedded {min(s + chunk, len(todo))}/{len(todo)} prompts, {time.time() - t0:.0f} s, "
              f"cache hits {cache.hits} misses {cache.misses} -->", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", default="linear,mf-lsa,stack-lsa,knn-embedding,mf-embedding,ensemble-embedding,"
                                         "stack,transfer-lsa,transfer")
    ap.add_argument("--tests", default="mmlu,gsm8k,mt-bench")
    ap.add_argument("--in-domain", default="", help="routers to also cross-validate in-domain on MMLU and GSM8K")
    ap.add_argument("--emb-cache", type=Path, default=None)
    ap.add_argument("--ci", type=int, default=500)
    ap.add_argument("--timing", default="stack-lsa,transfer-lsa", help="routers timed per request on long prompts")
    ap.add_argument("--timing-rounds", type=int, default=3)
    ap.add_argument("--mmlu-train", default="mmlu",
                    help="the MMLU used in training (mmlu-no-hsm: without the high-school-mathematics artefact)")
    ap.add_argument("--warm", action="store_true", help="only fill the embedding cache (one pass, every prompt)")
    ap.add_argument("--against", default="", help="a spec of --routers: every router's paired lead over it per test")
    args = ap.parse_args()
    cache = EmbeddingCache(args.emb_cache)
    raw = {n: load_benchmark(n) for n in NAMES}
    if args.warm:
        warm(cache, [p for d in raw.values() for p in d.prompts])
        return
    unit = {n: unit_scale(d) for n, d in raw.items()}
    unit["mmlu"] = unit_scale(load_benchmark(args.mmlu_train))
    specs = [s for s in args.routers.split(",") if s]
    tests = [t for t in args.tests.split(",") if t]
    results: dict[str, dict[str, str]] = {}
    kept: dict[str, dict[str, np.ndarray]] = {}
    for t in tests:
        d = raw[t]
        results.setdefault("random", {})[t] = cell(random_scores(d, 0), d, args.ci)
        results.setdefault("prompt-length", {})[t] = cell(prompt_length_scores(d), d, args.ci)
        train = concat([unit[n] for n in NAMES if n != t], "+".join(n for n in NAMES if n != t))
        for spec in specs:
            t0 = time.time()
            r = build(spec, cache).fit(train)
            kept.setdefault(spec, {})[t] = r.score(d)
            results.setdefault(spec, {})[t] = cell(kept[spec][t], d, args.ci)
            print(f"<!-- {spec} → {t}: {time.time() - t0:.0f} s -->", flush=True)
    print("\n### Leave-one-benchmark-out transfer (APGR, 95% interval; ~ = not above random with confidence, "
          "↓ = below random with confidence)\n")
    print("| router | " + " | ".join(f"{t} ← {'+'.join(n for n in NAMES if n != t)}" for t in tests) + " |")
    print("|---|" + "---|" * len(tests))
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(row.get(t, "") for t in tests) + " |")
    if args.against in kept:
        print(f"\nPaired lead over `{args.against}` (APGR difference, 95% interval on the same resamples):\n")
        print("| router | " + " | ".join(tests) + " |\n|---|" + "---|" * len(tests))
        for spec in [s for s in kept if s != args.against]:
            cells = []
            for t in tests:
                d, a, b = raw[t], kept[spec][t], kept[args.against][t]
                lead = bootstrap_apgr(a, d.strong, d.weak, against=b, rounds=args.ci or 300)
                point = apgr(routing_curve(a, d.strong, d.weak)) - apgr(routing_curve(b, d.strong, d.weak))
                cells.append(f"{point:+.3f} ({lead.low:+.3f}…{lead.high:+.3f})")
            print(f"| {spec} | " + " | ".join(cells) + " |", flush=True)

    if args.in_domain:
        print("\n### In-domain, 5-fold CV by question (same folds as bench/routers_benchmark.py)\n")
        print("| router | MMLU | GSM8K |\n|---|---|---|")
        for spec in [s for s in args.in_domain.split(",") if s]:
            vals = []
            for n in ("mmlu", "gsm8k"):
                d = raw[n]
                s = cross_val_scores(d, partial(build, spec, cache), 5, 0)
                vals.append(cell(s, d, args.ci))
            print(f"| {spec} | " + " | ".join(vals) + " |", flush=True)

    if args.timing:
        import functools
        import zlib

        from tierwise.routers import features
        from tierwise.routers.features import _tokens, token_hashes

        @functools.lru_cache(maxsize=4)
        def per_token(text: str) -> np.ndarray:  # A: as before, one Python string and one crc32 call per token
            toks = _tokens(text)
            return np.fromiter(map(zlib.crc32, map(str.encode, toks)), dtype=np.int64, count=len(toks))

        mmlu = raw["mmlu"]
        longest = sorted(mmlu.prompts, key=len)[-300:]
        print(f"\n### Decision time per request (score_text p50 ms; the 300 longest MMLU prompts, median "
              f"{statistics.median(map(len, longest)):.0f} characters; router fitted on GSM8K + MT-Bench; "
              f"A = every token hashed by its own crc32 call, as before; B = the character 4-grams hashed "
              f"together (vectorised CRC32, same values); each prompt hashed once for both feature sets in both; "
              f"interleaved, {args.timing_rounds} rounds)\n")
        train = concat([unit["gsm8k"], unit["mt-bench"]], "gsm8k+mt-bench")
        for spec in [s for s in args.timing.split(",") if s]:
            r = build(spec, cache).fit(train)
            a_times, b_times = [], []
            for _ in range(args.timing_rounds):
                for p in longest:
                    for variant, times in ((per_token, a_times), (token_hashes, b_times)):
                        features.token_hashes = variant
                        variant.cache_clear()  # nothing cached from an earlier call
                        t0 = time.perf_counter()
                        r.score_text(p)
                        times.append((time.perf_counter() - t0) * 1000)
            features.token_hashes = token_hashes
            a, b = statistics.median(a_times), statistics.median(b_times)
            print(f"- {spec}: A {a:.3f} ms, B {b:.3f} ms (B/A {b / a:.2f})", flush=True)


if __name__ == "__main__":
    main()
