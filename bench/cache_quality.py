"""Semantic-cache quality on labelled question pairs: false-hit rate against hit rate.

Data: `$TIERWISE_DATA/qqp-duplicates/pairs.jsonl` (or ../shared/data): {text_a, text_b, label}.
`text_a` plays the cached question, `text_b` the new one; serving the cached answer to a
non-duplicate is a false hit.

Definitions (the same for every method):
  hit rate       = pairs served from the cache / all evaluated pairs
  false-hit rate = served pairs that are not duplicates / all evaluated pairs
                   (the share of requests that get a wrong answer). The share among served
                   pairs (1 - precision) is printed too; at 1% it is out of every method's reach
                   on these labels: among the pairs with cosine >= 0.99 (mostly the same text up
                   to spaces and punctuation) 6-14% are labelled "not duplicate".

Methods, all on the same all-MiniLM-L6-v2 embeddings, in one run:
  cosine     a fixed cosine cut-off (LiteLLM/Bifrost default 0.8), swept to get its curve;
  gptcache   GPTCache's default similarity evaluation, SearchDistanceEvaluation(max_distance=4.0,
             positive=False) with Config(similarity_threshold=0.8): score = 4 - d where d is the
             vector store's (faiss L2) squared distance; hit when score >= (4 - 0) * 0.8, i.e.
             d <= 0.8, which on unit vectors is cosine >= 0.6. Swept through the threshold too;
  tierwise   the verifier (src/tierwise/cache/verifier.py) on pair features, trained on one part
             of the questions and scored on pairs whose questions it never saw: the pairs are split
             by connected components of the question graph (no question in two splits), 60% train,
             10% calibration (the shipped thresholds), 30% test. Every figure is on the test part.

Run:  nice -n 5 python bench/cache_quality.py [--write-model] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise.cache.pair_features import HAND_NAMES, fit_idf, pair_matrix  # noqa: E402
from tierwise.cache.verifier import MODEL_FILE, Verifier  # noqa: E402

FHRS = (0.005, 0.01, 0.02, 0.05)


def data_path() -> Path:
    base = os.environ.get("TIERWISE_DATA")
    p = Path(base) if base else ROOT.parent / "shared" / "data"
    if not (p / "qqp-duplicates" / "pairs.jsonl").exists():
        p = Path("/work/shared/data")
    return p / "qqp-duplicates" / "pairs.jsonl"


def embeddings(texts: list[str]) -> np.ndarray:
    h = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    d = Path(os.environ.get("TIERWISE_BENCH_CACHE", "/tmp/cache_bench"))
    d.mkdir(parents=True, exist_ok=True)
    f = d / f"qqp-minilm-{h}.npy"
    if f.exists():
        return np.load(f)
    from tierwise.routers.features import Embedder

    e = Embedder().encode(texts, batch_size=128)
    np.save(f, e)
    return e


def components(a_ids: np.ndarray, b_ids: np.ndarray, n: int) -> np.ndarray:
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(a_ids, b_ids, strict=True):
        rx, ry = find(int(x)), find(int(y))
        if rx != ry:
            parent[rx] = ry
    return np.array([find(int(x)) for x in a_ids])


def curve(score: np.ndarray, label: np.ndarray, per_served: bool = False
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(threshold, hit rate, false-hit rate) for every cut-off, best score first."""
    order = np.argsort(-score, kind="stable")
    s, y = score[order], label[order]
    served = np.arange(1, len(s) + 1)
    false = np.cumsum(1 - y)
    return s, served / len(s), false / (served if per_served else len(s))


def hit_rate_at(score: np.ndarray, label: np.ndarray, fhr: float, min_hits: int = 50,
                per_served: bool = False) -> tuple[float, float]:
    """The largest hit rate whose false-hit rate is <= fhr (ignoring the first `min_hits` pairs,
    where one wrong pair swings a per-served rate), and the threshold that gives it."""
    thr, hr, fr = curve(score, label, per_served)
    ok = np.where(fr[min_hits:] <= fhr)[0]
    if len(ok) == 0:
        return 0.0, float("inf")
    i = ok[-1] + min_hits
    return float(hr[i]), float(thr[i])


def at_threshold(score: np.ndarray, label: np.ndarray, t: float) -> tuple[float, float]:
    served = score >= t
    n = int(served.sum())
    return n / len(score), float((label[served] == 0).sum()) / len(score)


def train_mlp(x: np.ndarray, y: np.ndarray, seed: int, hidden: int) -> dict[str, np.ndarray]:
    from sklearn.neural_network import MLPClassifier

    mean = x.mean(0)
    scale = x.std(0) + 1e-6
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-3, batch_size=256, learning_rate_init=1e-3,
                        max_iter=60, early_stopping=True, validation_fraction=0.1, n_iter_no_change=6,
                        random_state=seed)
    clf.fit((x - mean) / scale, y)
    out: dict[str, np.ndarray] = {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
                                  "n_layers": np.array(len(clf.coefs_))}
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_, strict=True)):
        out[f"w{i}"] = w.astype(np.float32)
        out[f"b{i}"] = b.astype(np.float32)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--write-model", action="store_true", help=f"write the trained verifier to {MODEL_FILE}")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N pairs (quick runs)")
    args = ap.parse_args()
    t0 = time.time()
    rows = [json.loads(line) for line in data_path().open()]
    if args.limit:
        rows = rows[: args.limit]
    texts = sorted({r["text_a"] for r in rows} | {r["text_b"] for r in rows})
    idx = {t: i for i, t in enumerate(texts)}
    emb = embeddings(texts)
    a_ids = np.array([idx[r["text_a"]] for r in rows])
    b_ids = np.array([idx[r["text_b"]] for r in rows])
    y = np.array([int(r["label"]) for r in rows])
    print(f"{len(rows)} pairs ({y.sum()} duplicates), {len(texts)} distinct questions; embedded in "
          f"{time.time() - t0:.0f} s", flush=True)

    # split by connected components: no question appears in two parts
    comp = components(a_ids, b_ids, len(texts))
    uniq = np.unique(comp)
    rng = np.random.default_rng(args.seed)
    rng.shuffle(uniq)
    cut1, cut2 = int(len(uniq) * 0.6), int(len(uniq) * 0.7)
    part = {c: (0 if i < cut1 else 1 if i < cut2 else 2) for i, c in enumerate(uniq)}
    split = np.array([part[c] for c in comp])
    tr, ca, te = (split == 0), (split == 1), (split == 2)
    tq = {int(i) for i in a_ids[tr]} | {int(i) for i in b_ids[tr]}
    leak = sum(int(i) in tq for i in np.concatenate([a_ids[te], b_ids[te]]))
    print(f"split by question: train {tr.sum()}, calibration {ca.sum()}, test {te.sum()} pairs; "
          f"test questions seen in training: {leak}", flush=True)

    idf = fit_idf([texts[i] for i in sorted(tq)])
    a_txt = [texts[i] for i in a_ids]
    b_txt = [texts[i] for i in b_ids]
    x = pair_matrix(a_txt, b_txt, emb[a_ids], emb[b_ids], idf)
    print(f"features: {len(HAND_NAMES)} hand + {x.shape[1] - len(HAND_NAMES)} embedding interactions", flush=True)
    model = train_mlp(x[tr], y[tr], args.seed, args.hidden)
    arrays = {**model, "idf": idf}
    probe = Verifier({**arrays, "fhr": np.array([0.01]), "thr": np.array([0.5])})
    p = probe.prob_features(x)
    thr = [hit_rate_at(p[ca], y[ca], f)[1] for f in FHRS]
    arrays.update(fhr=np.array(FHRS), thr=np.array(thr, dtype=np.float64))

    cos = np.einsum("ij,ij->i", emb[a_ids], emb[b_ids])
    d2 = np.sum((emb[a_ids] - emb[b_ids]) ** 2, axis=1)
    gpt = 4.0 - np.clip(d2, 0, 4.0)  # SearchDistanceEvaluation(max_distance=4.0): 4 - distance
    yt = y[te]
    print(f"\ntest pairs: {te.sum()}, duplicates {yt.mean():.1%} (the most any method can serve correctly)")
    methods = (("cosine (fixed cut-off, swept)", cos), ("gptcache SearchDistanceEvaluation", gpt),
               ("tierwise verifier", p))
    print("\nhit rate at a false-hit rate (wrong answers / all requests) of at most ... "
          "(best threshold on the test pairs themselves, for each method):")
    print(f"{'method':<34}" + "".join(f"{f:>9.1%}" for f in FHRS))
    res = {}
    for name, s in methods:
        res[name] = [hit_rate_at(s[te], yt, f)[0] for f in FHRS]
        print(f"{name:<34}" + "".join(f"{h:>9.1%}" for h in res[name]))
    print("\nthe same, false hits counted among served pairs (1 - precision) instead:")
    print(f"{'method':<34}" + "".join(f"{f:>9.1%}" for f in (0.05, 0.1, 0.15, 0.2)))
    for name, s in methods:
        print(f"{name:<34}" + "".join(f"{hit_rate_at(s[te], yt, f, per_served=True)[0]:>9.1%}"
                                      for f in (0.05, 0.1, 0.15, 0.2)))
    base = res["cosine (fixed cut-off, swept)"][1]
    ours = res["tierwise verifier"][1]
    print(f"\nat 1% false hits: tierwise {ours:.1%} vs fixed cosine {base:.1%} = {ours / base:.2f}x"
          if base else "")
    print("\ndefault operating points on the test pairs (hit rate, false hits / all requests):")
    for name, s, t in (("cosine >= 0.8 (LiteLLM/Bifrost)", cos, 0.8), ("gptcache default (d <= 0.8)", gpt, 3.2)):
        hr, fr = at_threshold(s[te], yt, t)
        print(f"  {name:<34} hit {hr:6.1%}  false hits {fr:6.1%}")
    for f, t in zip(FHRS, thr, strict=True):
        hr, fr = at_threshold(p[te], yt, t)
        print(f"  tierwise shipped, {f:.1%} target  hit {hr:6.1%}  false hits {fr:6.1%}  (threshold {t:.4f}, "
              "calibrated on the calibration part)")
    if args.write_model:
        Verifier.save(MODEL_FILE, **arrays)
        print(f"\nwrote {MODEL_FILE} ({MODEL_FILE.stat().st_size // 1024} KiB)")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
