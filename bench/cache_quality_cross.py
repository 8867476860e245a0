"""Experiment (issue 18, session 14): a cross-encoder verifier for the semantic cache, measured with
the protocol of bench/cache_quality.py (same data, folds, definitions and baselines).

The shipped verifier (src/tierwise/cache/pair_model.py) reads frozen MiniLM token vectors. This
one (bench/cross_encoder_model.py, trained by bench/cross_encoder_training.py) is a cross-encoder
cut in two: MiniLM's first `--split` layers read each question alone (the pass that embeds it),
its remaining layers read both questions as one sequence, with LoRA adapters (rank `--rank`) on
their attention and feed-forward matrices, their layer norms and a small head trained on the
labelled pairs. It did not beat the shipped verifier on the same split (bench/RESULTS.md, issue 18
session 14), so it is not shipped; it is kept here to be re-run with more compute.

`--cv`: the 5-fold cross-validation of cache_quality.py; `--cv-rounds N` runs the first N rounds;
`--max-train N` trains each round on N of its training pairs (one fixed random order). Only the
questions a run uses are embedded (kept in $TIERWISE_BENCH_CACHE, default /tmp/cache_bench).

Run:  nice -n 5 python bench/cache_quality_cross.py --cv --cv-rounds 1 --max-train 16000 --epochs 3 --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import cross_encoder_training as ct  # noqa: E402
from cache_quality import cv_row, cv_split, cv_table, data_path, report  # noqa: E402
from cross_encoder_model import FORMAT, CrossVerifier, encode_states  # noqa: E402

from tierwise.cache import verifier_training as vt  # noqa: E402

FOLDS = 10




class States:
    """Sentence vectors and split-layer states of the distinct questions, computed only for the questions a
    run uses and kept on disk between runs (embedding is the slow part)."""

    def __init__(self, texts: list[str], split: int) -> None:
        self.texts, self.split, self.st = texts, split, None
        h = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        d = Path(os.environ.get("TIERWISE_BENCH_CACHE", "/tmp/cache_bench"))
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / f"qqp-minilm-split{split}-{h}.npz"
        self.sent = np.zeros((len(texts), 384), np.float32)
        self.tok: list[np.ndarray] = [np.zeros((0, 384), np.float16)] * len(texts)
        self.done = np.zeros(len(texts), bool)
        if self.path.exists():
            with np.load(self.path) as z:
                self.sent, self.done, off, tok = z["sent"], z["done"], z["off"], z["tok"]
            self.tok = [tok[off[i]:off[i + 1]] for i in range(len(texts))]

    def save(self) -> None:
        tok, off = self.packed()
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, sent=self.sent, tok=tok, off=off, done=self.done)
        os.replace(tmp, self.path)

    def packed(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.tok), np.concatenate([[0], np.cumsum([len(t) for t in self.tok])])

    def ensure(self, idx: np.ndarray) -> None:
        todo = np.array(sorted(set(idx.tolist()) - set(np.where(self.done)[0].tolist())), dtype=int)
        if not len(todo):
            return
        if self.st is None:
            from tierwise.routers.features import Embedder

            self.st = Embedder()._load()
        todo = todo[np.argsort([len(self.texts[i]) for i in todo], kind="stable")]
        t0, c0 = time.time(), time.process_time()
        for n, s in enumerate(range(0, len(todo), 128)):
            j = todo[s:s + 128]
            for i, (se, states) in zip(j, encode_states([self.texts[i] for i in j], self.st, self.split),
                                       strict=True):
                self.sent[i], self.tok[i], self.done[i] = se, states, True
            if n % 20 == 19 or s + 128 >= len(todo):
                self.save()
                print(f"  embedded {min(s + 128, len(todo))}/{len(todo)} questions ({time.time() - t0:.0f} s, "
                      f"{time.process_time() - c0:.0f} s CPU)", file=sys.stderr, flush=True)

    def pair_data(self, d: vt.PairData) -> vt.PairData:
        tok, off = self.packed()
        return vt.PairData(d.texts, d.a, d.b, d.y, self.sent, tok, off)


def needed(d: vt.PairData, *parts: np.ndarray) -> np.ndarray:
    rows = np.concatenate(parts)
    return np.concatenate([d.a[rows], d.b[rows]])


def train_rows(tr: np.ndarray, n_pairs: int, args: argparse.Namespace) -> np.ndarray:
    """The training pairs: all of `tr`, or the first --max-train of them in one fixed random order of all pairs."""
    if not args.max_train or len(tr) <= args.max_train:
        return tr
    perm = np.random.default_rng(args.seed).permutation(n_pairs)
    return np.sort(perm[np.isin(perm, tr)][: args.max_train])




def fit(d0: vt.PairData, states: States, tr: np.ndarray, ca: np.ndarray, te: np.ndarray, seed: int,
        args: argparse.Namespace) -> tuple[vt.PairData, dict[str, np.ndarray], np.ndarray, float, float]:
    """Embed what the round needs, train on `tr` (subsampled), calibrate on `ca`, score `te` with the shipped
    inference path. Returns the data, the model arrays, the test probabilities, training and scoring CPU s."""
    tr = train_rows(tr, len(d0.y), args)
    states.ensure(needed(d0, tr, ca, te))
    d = states.pair_data(d0)
    c0 = time.process_time()
    arrays = ct.train(d, tr, ca, states_bert(states), split=args.split, seed=seed, epochs=args.epochs,
                      rank=args.rank)
    c1 = time.process_time()
    p = ct.score_pairs(CrossVerifier({**arrays, "format": np.array(FORMAT)}, states_bert(states)), d, te)
    return d, arrays, p, c1 - c0, (time.process_time() - c1) / len(te) * 1e3


def states_bert(states: States) -> object:
    if states.st is None:
        from tierwise.routers.features import Embedder

        states.st = Embedder()._load()
    return states.st[0].auto_model


def split_run(d0: vt.PairData, states: States, folds: np.ndarray, args: argparse.Namespace) -> None:
    tr, ca, te = (np.where(folds < 6)[0], np.where(folds == 6)[0], np.where(folds > 6)[0])
    seen = set(d0.a[tr].tolist()) | set(d0.b[tr].tolist())
    leak = sum(int(i) in seen for i in np.concatenate([d0.a[te], d0.b[te]]))
    print(f"split by question: train {len(tr)}, calibration {len(ca)}, test {len(te)} pairs; test questions seen "
          f"in training: {leak}", flush=True)
    d, arrays, p, train_cpu, per_pair = fit(d0, states, tr, ca, te, args.seed, args)
    report(d, te, p, arrays["thr"])
    print(f"\ntraining: {train_cpu:.0f} s CPU; verifier inference (shipped path, batches of 64): {per_pair:.2f} ms "
          "CPU per pair")
    if args.save:
        CrossVerifier.save(args.save, **arrays)
        print(f"wrote {args.save} ({Path(args.save).stat().st_size // 1024} KiB)")


def cross_validate(d0: vt.PairData, states: States, folds: np.ndarray, args: argparse.Namespace) -> None:
    rows = []
    for r in range(args.cv_rounds):
        tr, ca, te = cv_split(folds, r)
        print(f"round {r + 1}: train {len(tr)} (using {len(train_rows(tr, len(d0.y), args))}), calibration "
              f"{len(ca)}, test {len(te)}", flush=True)
        d, arrays, p, train_cpu, per_pair = fit(d0, states, tr, ca, te, args.seed + r, args)
        rows.append(cv_row(d, te, p, arrays["thr"]))
        cos, ours, _, hr, fr = rows[-1]
        print(f"  cosine {cos:.1%}  tierwise {ours:.1%}  ratio {ours / cos:.2f}x  calibrated 1%: hit {hr:.1%}, "
              f"false hits {fr:.2%}; training {train_cpu:.0f} s CPU, scoring {per_pair:.2f} ms CPU per pair", flush=True)
        if args.save and r == 0:
            CrossVerifier.save(args.save, **arrays)
            print(f"  wrote round 1's model to {args.save} ({Path(args.save).stat().st_size // 1024} KiB)", flush=True)
    cv_table(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--split", type=int, default=ct.SPLIT, help="MiniLM layers each question reads alone (the rest: joint)")
    ap.add_argument("--rank", type=int, default=8, help="LoRA rank")
    ap.add_argument("--max-train", type=int, default=0, help="train on at most N pairs per round (0: all)")
    ap.add_argument("--save", default="", help="write the trained model (.npz) here (with --cv: round 1's)")
    ap.add_argument("--cv", action="store_true", help="5-fold cross-validation instead of the one split")
    ap.add_argument("--cv-rounds", type=int, default=5, help="--cv: how many of the 5 rounds to run")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.time()
    pairs = vt.read_pairs(data_path())
    d0 = vt.pair_data(pairs, lambda t: (np.zeros((len(t), 1)), np.zeros((0, 1)), np.zeros(len(t) + 1, int)))
    states = States(d0.texts, args.split)
    print(f"{len(pairs)} pairs ({int(d0.y.sum())} duplicates), {len(d0.texts)} distinct questions "
          f"({int(states.done.sum())} embedded before)", flush=True)
    folds = vt.fold_of(d0, FOLDS, args.seed)
    (cross_validate if args.cv else split_run)(d0, states, folds, args)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
