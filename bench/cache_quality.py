"""Semantic-cache quality on labelled question pairs: hit rate against false-hit rate.

Data: `$TIERWISE_DATA/qqp-duplicates/pairs.jsonl` (or ../shared/data): {text_a, text_b, label}.
`text_a` plays the cached question, `text_b` the new one; serving the cached answer to a
non-duplicate is a false hit.

Definitions (the same for every method):
  hit rate       = pairs served from the cache / all evaluated pairs
  false-hit rate = served pairs that are not duplicates / all evaluated pairs
                   (the share of requests that get a wrong answer)

Methods, all on the same all-MiniLM-L6-v2 model, in one run:
  cosine     a fixed cosine cut-off (LiteLLM/Bifrost default 0.8); swept to get its curve;
  gptcache   GPTCache's default similarity evaluation, SearchDistanceEvaluation(max_distance=4.0,
             positive=False) with Config(similarity_threshold=0.8): score = 4 - d where d is the
             vector store's (faiss L2) squared distance; hit when score >= 4 * 0.8, i.e. d <= 0.8,
             which on unit vectors is cosine >= 0.6. Swept through the threshold too;
  tierwise   the verifier (src/tierwise/cache/pair_model.py) over the two questions' token vectors
             and surface cues, trained on some questions and scored on pairs whose questions it
             never saw: pairs are split by connected components of the question graph into 10
             folds: 6 train, 1 calibrates (epoch and thresholds), 3 test. Scored with the shipped
             numpy inference path.
The baselines' curves are swept on the test pairs themselves (their best case); tierwise's
operating points are fixed on the calibration fold.

`--cv`: 5-fold cross-validation over the same 10 folds (2 test, 1 calibration, 7 train per round):
the held-out figure and its spread.

Run:  nice -n 5 python bench/cache_quality.py [--write-model] [--cv] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise.cache import verifier_training as vt  # noqa: E402
from tierwise.cache.pair_model import MODEL_FILE, PairModel  # noqa: E402

FOLDS = 10


def data_path() -> Path:
    base = os.environ.get("TIERWISE_DATA")
    p = Path(base) if base else ROOT.parent / "shared" / "data"
    if not (p / "qqp-duplicates" / "pairs.jsonl").exists():
        p = Path("/work/shared/data")
    return p / "qqp-duplicates" / "pairs.jsonl"


def cached_encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentence and token vectors of `texts`, kept on disk between runs (embedding is the slow part)."""
    h = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    d = Path(os.environ.get("TIERWISE_BENCH_CACHE", "/tmp/cache_bench"))
    d.mkdir(parents=True, exist_ok=True)
    f = d / f"qqp-minilm-tokens-{h}.npz"
    if f.exists():
        with np.load(f) as z:
            return z["sent"], z["tok"], z["off"]
    from tierwise.routers.features import Embedder

    t0 = time.time()
    st = Embedder()._load()
    out = vt.encode(texts, st, progress=lambda n: print(f"  embedded {n}/{len(texts)} ({time.time() - t0:.0f} s)",
                                                        file=sys.stderr, flush=True) if n % 12800 < 128 else None)
    np.savez(f, sent=out[0], tok=out[1], off=out[2])
    return out


def methods(d: vt.PairData, rows: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    cos = np.einsum("ij,ij->i", d.sent[d.a[rows]], d.sent[d.b[rows]])
    d2 = np.sum((d.sent[d.a[rows]] - d.sent[d.b[rows]]) ** 2, axis=1)
    return {"cosine (fixed cut-off, swept)": cos,
            "gptcache SearchDistanceEvaluation": 4.0 - np.clip(d2, 0, 4.0),  # 4 - distance
            "tierwise verifier": p}


def report(d: vt.PairData, te: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> None:
    """The comparison on the test pairs: hit rate at each false-hit rate for every method, the defaults as
    others ship them, and the verifier at the thresholds calibrated on the calibration fold."""
    yt = d.y[te]
    print(f"\ntest pairs: {len(te)}, duplicates {yt.mean():.1%} (the most any method can serve correctly)")
    print("\nhit rate at a false-hit rate (wrong answers / all requests) of at most ...")
    print(f"{'method':<36}" + "".join(f"{f:>9.1%}" for f in vt.FHRS))
    res = {}
    for name, s in methods(d, te, p).items():
        res[name] = [vt.hit_rate_at(s, yt, f)[0] for f in vt.FHRS]
        print(f"{name:<36}" + "".join(f"{h:>9.1%}" for h in res[name]))
    base, ours = res["cosine (fixed cut-off, swept)"][1], res["tierwise verifier"][1]
    print(f"\nat 1% false hits: tierwise {ours:.1%} vs fixed cosine {base:.1%} = {ours / base:.2f}x")
    print("\noperating points fixed in advance, on the test pairs (hit rate, false hits / all requests):")
    sc = methods(d, te, p)
    for name, s, t in (("cosine >= 0.8 (LiteLLM/Bifrost)", sc["cosine (fixed cut-off, swept)"], 0.8),
                       ("gptcache default (d <= 0.8)", sc["gptcache SearchDistanceEvaluation"], 3.2)):
        hr, fr = vt.at_threshold(s, yt, t)
        print(f"  {name:<36} hit {hr:6.1%}  false hits {fr:6.1%}")
    for f, t in zip(vt.FHRS, thresholds, strict=True):
        hr, fr = vt.at_threshold(p, yt, float(t))
        print(f"  tierwise shipped, {f:.1%} target      hit {hr:6.1%}  false hits {fr:6.1%}  (threshold {t:.4f}, "
              "from the calibration fold)")


def cv_row(d: vt.PairData, te: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> tuple[float, ...]:
    """One cross-validation round: cosine's and the verifier's hit rate at 1% false hits, their ratio, and
    the verifier at its calibrated 1% threshold (hit rate, false hits)."""
    cos = vt.hit_rate_at(methods(d, te, p)["cosine (fixed cut-off, swept)"], d.y[te], 0.01)[0]
    ours = vt.hit_rate_at(p, d.y[te], 0.01)[0]
    hr, fr = vt.at_threshold(p, d.y[te], float(thresholds[1]))
    return cos, ours, ours / cos, hr, fr


def cv_table(rows: list[tuple[float, ...]]) -> None:
    print("\n| round | cosine, swept, at 1% | tierwise at 1% | ratio | tierwise at its calibrated 1% threshold: "
          "hit / false hits |")
    print("|---|---|---|---|---|")
    for i, (c, o, q, h, f) in enumerate(rows, 1):
        print(f"| {i} | {c:.1%} | {o:.1%} | {q:.2f}x | {h:.1%} / {f:.2%} |")
    if len(rows) > 1:
        cols = list(zip(*rows, strict=True))
        print(f"| mean (sd) | {statistics.mean(cols[0]):.1%} | {statistics.mean(cols[1]):.1%} | "
              f"{statistics.mean(cols[2]):.2f}x ({statistics.stdev(cols[2]):.2f}) | {statistics.mean(cols[3]):.1%} / "
              f"{statistics.mean(cols[4]):.2%} |")


def split_run(d: vt.PairData, folds: np.ndarray, args: argparse.Namespace) -> None:
    tr, ca, te = (np.where(folds < 6)[0], np.where(folds == 6)[0], np.where(folds > 6)[0])
    seen = set(d.a[tr].tolist()) | set(d.b[tr].tolist())
    leak = sum(int(i) in seen for i in np.concatenate([d.a[te], d.b[te]]))
    print(f"split by question: train {len(tr)}, calibration {len(ca)}, test {len(te)} pairs; test questions seen "
          f"in training: {leak}", flush=True)
    arrays = vt.train(d, tr, ca, seed=args.seed, epochs=args.epochs)
    model = PairModel({**arrays, "format": np.array(2)})
    t0 = time.process_time()
    p = vt.score_pairs(model, d, te)
    per_pair = (time.process_time() - t0) / len(te) * 1e3
    report(d, te, p, arrays["thr"])
    print(f"\nverifier inference (numpy, shipped path): {per_pair:.2f} ms CPU per pair")
    if args.write_model:
        PairModel.save(MODEL_FILE, **arrays)
        print(f"wrote {MODEL_FILE} ({MODEL_FILE.stat().st_size // 1024} KiB)")


def cv_split(folds: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Round r of the cross-validation: (train, calibration, test) pair indices; folds 2r and 2r+1
    are the test part, fold 2r+2 the calibration part, the rest train."""
    test_f, cal_f = {2 * r, 2 * r + 1}, (2 * r + 2) % FOLDS
    te = np.where(np.isin(folds, list(test_f)))[0]
    ca = np.where(folds == cal_f)[0]
    tr = np.where(~np.isin(folds, [*test_f, cal_f]))[0]
    return tr, ca, te


def cross_validate(d: vt.PairData, folds: np.ndarray, args: argparse.Namespace) -> None:
    rows = []
    for r in range(args.cv_rounds):
        tr, ca, te = cv_split(folds, r)
        print(f"round {r + 1}: train {len(tr)}, calibration {len(ca)}, test {len(te)}", flush=True)
        arrays = vt.train(d, tr, ca, seed=args.seed + r, epochs=args.epochs)
        p = vt.score_pairs(PairModel({**arrays, "format": np.array(2)}), d, te)
        rows.append(cv_row(d, te, p, arrays["thr"]))
        cos, ours, _, hr, fr = rows[-1]
        print(f"  cosine {cos:.1%}  tierwise {ours:.1%}  ratio {ours / cos:.2f}x  calibrated 1%: hit {hr:.1%}, "
              f"false hits {fr:.2%}", flush=True)
    cv_table(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--write-model", action="store_true", help=f"write the trained verifier to {MODEL_FILE}")
    ap.add_argument("--cv", action="store_true", help="5-fold cross-validation instead of the one split")
    ap.add_argument("--cv-rounds", type=int, default=5, help="--cv: how many of the 5 rounds to run")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N pairs (quick runs)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.time()
    pairs = vt.read_pairs(data_path())
    if args.limit:
        pairs = pairs[: args.limit]
    d = vt.pair_data(pairs, cached_encode)
    print(f"{len(pairs)} pairs ({int(d.y.sum())} duplicates), {len(d.texts)} distinct questions; embedded in "
          f"{time.time() - t0:.0f} s", flush=True)
    folds = vt.fold_of(d, FOLDS, args.seed)
    (cross_validate if args.cv else split_run)(d, folds, args)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
