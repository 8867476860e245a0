"""Experiment (issue 18, session 17): all-MiniLM-L6-v2 fine-tuned **whole** (all 6 layers, every weight)
as a cross-encoder on the training folds, measured with the protocol of bench/cache_quality.py (same
data, folds by connected components, definitions and baselines).

The model reads "[CLS] cached [SEP] new [SEP]" (token types 0/1) as one sequence, mean-pools its last
layer and a linear head gives the logit of "same question"; trained with BCE, AdamW, linear warm-up and
decay, batches of similar length (dynamic padding), the two questions in random order. The checkpoint
(the calibration fold is scored every `--eval-every` training pairs) and the thresholds are picked on the
calibration fold, never on test. `--probe N` only times N training pairs (pairs per CPU-second).

To fit a loaded 2-core machine the model is the second stage of a cascade: only the pairs whose first-stage
score (`--gate cosine`: base MiniLM cosine; `--gate jaccard`: word-piece overlap, which needs no embedding
pass) is in the calibration fold's top `--keep` share are scored, the rest are never served; it trains on the
training folds' pairs with the top `--train-keep` word-piece overlap (at most `--max-train` of them). With
`--gate cosine` the cosine baseline (swept on the test pairs themselves) is computed in the same run. Each
round's scores go to `--out DIR`/round{r}.npz.

Run (session 17's figures, bench/RESULTS.md):
      HF_HUB_OFFLINE=1 nice -n 10 python bench/cache_quality_finetune.py --probe 256 --threads 2
      HF_HUB_OFFLINE=1 nice -n 10 python bench/cache_quality_finetune.py --cv-rounds 1 --gate jaccard --keep 0.3 \
          --max-train 2000 --eval-every 1000 --lr 8e-5 --threads 1       # and --max-train 6000 --eval-every 3000
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from cache_quality import FOLDS, cv_split, data_path  # noqa: E402

from tierwise.cache import verifier_training as vt  # noqa: E402

MAX_Q_TOKENS = 48  # word pieces per question (so at most 99 per pair with [CLS] and two [SEP])


class Tok:
    """Word-piece ids of every distinct question, tokenised once (no special tokens, cut at MAX_Q_TOKENS)."""

    def __init__(self, texts: list[str], tokenizer: Any) -> None:
        self.ids: list[list[int]] = []
        for s in range(0, len(texts), 4096):
            enc = tokenizer(texts[s:s + 4096], add_special_tokens=False, truncation=True, max_length=MAX_Q_TOKENS)
            self.ids.extend(enc["input_ids"])
        self.len = np.array([len(x) for x in self.ids])
        self.cls, self.sep = tokenizer.cls_token_id, tokenizer.sep_token_id

    def batch(self, ia: np.ndarray, ib: np.ndarray) -> tuple[Any, Any, Any]:
        import torch

        n = int(max(self.len[ia] + self.len[ib])) + 3
        inp = torch.zeros(len(ia), n, dtype=torch.long)
        tt = torch.zeros(len(ia), n, dtype=torch.long)
        m = torch.zeros(len(ia), n, dtype=torch.long)
        for j, (x, y) in enumerate(zip(ia, ib, strict=True)):
            a, b = self.ids[int(x)], self.ids[int(y)]
            s = [self.cls, *a, self.sep, *b, self.sep]
            inp[j, :len(s)] = torch.tensor(s)
            tt[j, len(a) + 2:len(s)] = 1
            m[j, :len(s)] = 1
        return inp, tt, m

    def jaccard(self, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        out = np.empty(len(ia))
        for j, (x, y) in enumerate(zip(ia, ib, strict=True)):
            a, b = set(self.ids[int(x)]), set(self.ids[int(y)])
            out[j] = len(a & b) / max(1, len(a | b))
        return out


def make_net(bert: Any) -> Any:
    import torch
    from torch import nn

    class Cross(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = copy.deepcopy(bert)
            self.drop = nn.Dropout(0.1)
            self.head = nn.Linear(int(bert.config.hidden_size), 1)

        def forward(self, inp: Any, tt: Any, m: Any) -> Any:
            h = self.bert(input_ids=inp, token_type_ids=tt, attention_mask=m).last_hidden_state
            mf = m.to(h.dtype)[..., None]
            return self.head(self.drop((h * mf).sum(1) / mf.sum(1)))[:, 0]

    net = Cross()
    for p in net.parameters():
        p.requires_grad_(True)
    torch.nn.init.zeros_(net.head.bias)
    return net


def score(net: Any, tok: Tok, a: np.ndarray, b: np.ndarray, bs: int = 128) -> np.ndarray:
    import torch

    net.eval()
    order = np.argsort(tok.len[a] + tok.len[b], kind="stable")
    out = np.empty(len(a), np.float32)
    with torch.inference_mode():
        for s in range(0, len(a), bs):
            j = order[s:s + bs]
            out[j] = net(*tok.batch(a[j], b[j])).float().numpy()
    return out


def batches(tok: Tok, a: np.ndarray, b: np.ndarray, rng: np.random.Generator, size: int) -> list[np.ndarray]:
    key = tok.len[a] + tok.len[b] + rng.random(len(a))
    order = np.argsort(key)
    out = [order[s:s + size] for s in range(0, len(order), size)]
    rng.shuffle(out)  # type: ignore[arg-type]
    return out


def train_rows(tr: np.ndarray, n_pairs: int, max_train: int, seed: int) -> np.ndarray:
    """All of `tr`, or the first `max_train` of them in one fixed random order of all pairs."""
    if not max_train or len(tr) <= max_train:
        return tr
    perm = np.random.default_rng(seed).permutation(n_pairs)
    return perm[np.isin(perm, tr)][:max_train]


def train_step(net: Any, opt: Any, sched: Any, tok: Tok, a: np.ndarray, b: np.ndarray, y: np.ndarray,
               rng: np.random.Generator) -> float:
    import torch

    swap = rng.random(len(a)) < 0.5  # the two questions in random order: the model learns both
    a2, b2 = np.where(swap, b, a), np.where(swap, a, b)
    z = net(*tok.batch(a2, b2))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, torch.from_numpy(y.astype(np.float32)))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    sched.step()
    return float(loss.item())


def optimiser(net: Any, lr: float, steps: int) -> tuple[Any, Any]:
    import torch

    decay = [p for n, p in net.named_parameters() if p.ndim > 1]
    rest = [p for n, p in net.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=lr)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.02, (steps - s) / max(1, steps - warm))))
    return opt, sched


def probe(d: vt.PairData, tok: Tok, bert: Any, tr: np.ndarray, args: argparse.Namespace) -> None:
    rows = train_rows(tr, len(d.y), args.probe, args.seed)
    net = make_net(bert)
    net.train()
    opt, sched = optimiser(net, args.lr, 1000)
    rng = np.random.default_rng(args.seed)
    bl = batches(tok, d.a[rows], d.b[rows], rng, args.batch)
    c0, t0 = time.process_time(), time.time()
    for j in bl:
        train_step(net, opt, sched, tok, d.a[rows[j]], d.b[rows[j]], d.y[rows[j]], rng)
    c1, t1 = time.process_time(), time.time()
    score(net, tok, d.a[rows], d.b[rows])
    c2, t2 = time.process_time(), time.time()
    n = len(rows)
    print(f"probe: {n} pairs, mean {np.mean(tok.len[d.a[rows]] + tok.len[d.b[rows]] + 3):.1f} word pieces a pair; "
          f"training {n / (c1 - c0):.1f} pairs per CPU-second ({n / (t1 - t0):.1f} per wall second, "
          f"{c1 - c0:.0f} s CPU); scoring {n / (c2 - c1):.1f} pairs per CPU-second ({n / (t2 - t1):.1f} per wall s)")


def gated(p: np.ndarray, gate: np.ndarray) -> np.ndarray:
    """Scores of all pairs: the model's where the cosine gate let the pair through, never served elsewhere."""
    out = np.full(len(gate), -1e9, np.float64)
    out[gate] = p
    return out


def base_cosine(d: vt.PairData, st: Any, rows: np.ndarray) -> np.ndarray:
    idx = np.unique(np.concatenate([d.a[rows], d.b[rows]]))
    emb = st.encode([d.texts[i] for i in idx], batch_size=128, normalize_embeddings=True, show_progress_bar=False)
    pos = {int(i): k for k, i in enumerate(idx)}
    ea = emb[[pos[int(i)] for i in d.a[rows]]]
    eb = emb[[pos[int(i)] for i in d.b[rows]]]
    return np.einsum("ij,ij->i", ea, eb).astype(np.float32)


def run_round(d: vt.PairData, tok: Tok, st: Any, folds: np.ndarray, r: int, args: argparse.Namespace) -> None:
    import torch

    tr, ca, te = cv_split(folds, r)
    if args.smoke:  # a code-path check on a few pairs, no figure
        ca, te = ca[:args.smoke], te[:args.smoke]
    hard = tr[tok.jaccard(d.a[tr], d.b[tr]) >= np.quantile(tok.jaccard(d.a[tr], d.b[tr]), 1 - args.train_keep)]
    rows = train_rows(hard, len(d.y), args.max_train, args.seed)
    print(f"round {r + 1}: train folds {len(tr)} pairs, {len(hard)} with the top {args.train_keep:.0%} word-piece "
          f"overlap (using {len(rows)}, {d.y[rows].mean():.1%} duplicates), calibration {len(ca)}, test {len(te)}",
          flush=True)
    t0, c0 = time.time(), time.process_time()
    if args.gate == "cosine":
        cos_ca, cos_te = base_cosine(d, st, ca), base_cosine(d, st, te)
    else:  # word-piece overlap: free, no embedding pass (the cosine baseline is then not computed here)
        cos_ca, cos_te = tok.jaccard(d.a[ca], d.b[ca]), tok.jaccard(d.a[te], d.b[te])
    cut = float(np.quantile(cos_ca, 1 - args.keep))
    g_ca, g_te = cos_ca >= cut, cos_te >= cut
    print(f"  gate score ({args.gate}) of calibration and test pairs: {time.time() - t0:.0f} s, {time.process_time() - c0:.0f} s CPU; "
          f"{args.gate} at 1%: calibration {vt.hit_rate_at(cos_ca, d.y[ca], 0.01)[0]:.1%}, "
          f"test {vt.hit_rate_at(cos_te, d.y[te], 0.01)[0]:.1%}; gate {args.gate} >= {cut:.4f} (the calibration fold's top "
          f"{args.keep:.0%}) keeps {g_te.mean():.1%} of test pairs, holding {d.y[te][g_te].sum() / d.y[te].sum():.1%} "
          "of its duplicates", flush=True)
    ca_g, te_g = ca[g_ca], te[g_te]
    torch.manual_seed(args.seed + r)
    rng = np.random.default_rng(args.seed + r)
    net = make_net(st[0].auto_model)
    steps = args.epochs * math.ceil(len(rows) / args.batch)
    opt, sched = optimiser(net, args.lr, steps)
    best, best_state, best_at, seen, losses, p_ca = -1.0, None, 0, 0, [], np.zeros(0)
    t0, c0 = time.time(), time.process_time()
    next_eval = args.eval_every or len(rows)
    for ep in range(args.epochs):
        for bi, j in enumerate(batches(tok, d.a[rows], d.b[rows], rng, args.batch)):
            net.train()
            losses.append(train_step(net, opt, sched, tok, d.a[rows[j]], d.b[rows[j]], d.y[rows[j]], rng))
            seen += len(j)
            if bi % 100 == 99:
                print(f"  epoch {ep + 1}: {seen} pairs, loss {np.mean(losses[-100:]):.3f} ({time.time() - t0:.0f} s, "
                      f"{time.process_time() - c0:.0f} s CPU)", flush=True)
            last = ep == args.epochs - 1 and bi == math.ceil(len(rows) / args.batch) - 1
            if seen >= next_eval or last:
                next_eval += args.eval_every or len(rows)
                p = gated(score(net, tok, d.a[ca_g], d.b[ca_g]), g_ca)
                h = vt.hit_rate_at(p, d.y[ca], 0.01)[0]
                print(f"  after {seen} pairs: calibration hit rate at 1% false hits {h:.1%} ({time.time() - t0:.0f} s, "
                      f"{time.process_time() - c0:.0f} s CPU)", flush=True)
                if h > best:
                    best, best_at, p_ca = h, seen, p
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    train_cpu = time.process_time() - c0
    net.load_state_dict(best_state)
    c1 = time.process_time()
    p_te = gated(score(net, tok, d.a[te_g], d.b[te_g]), g_te)
    per_pair = (time.process_time() - c1) / len(te_g) * 1e3
    thr = [vt.hit_rate_at(p_ca, d.y[ca], f)[1] for f in vt.FHRS]
    y = d.y[te]
    cos, ours = vt.hit_rate_at(cos_te, y, 0.01)[0], vt.hit_rate_at(p_te, y, 0.01)[0]
    print(f"\nround {r + 1}: checkpoint after {best_at} pairs (calibration {best:.1%}); training {train_cpu:.0f} s CPU; "
          f"scoring {per_pair:.2f} ms CPU a pair (batches of 128)")
    # the logit plus w x the base cosine (both scaled on the calibration fold's gated pairs), w picked there
    sx, sc = p_ca[g_ca].std() + 1e-9, cos_ca[g_ca].std() + 1e-9
    grid = np.arange(0, 3.01, 0.25)
    cal = [vt.hit_rate_at(np.where(g_ca, p_ca / sx + w * cos_ca / sc, -1e9), d.y[ca], 0.01)[0] for w in grid]
    w = float(grid[int(np.argmax(cal))])
    comb = np.where(g_te, p_te / sx + w * cos_te / sc, -1e9)
    print(f"{'test, hit rate at false hits <=':<36}" + "".join(f"{f:>9.1%}" for f in vt.FHRS))
    for name, s in ((f"{args.gate} (swept on test)", cos_te), ("fine-tuned cross-encoder", p_te),
                    (f"cross-encoder + {w:.2f} x {args.gate}", comb)):
        print(f"{name:<36}" + "".join(f"{vt.hit_rate_at(s, y, f)[0]:>9.1%}" for f in vt.FHRS))
    both = vt.hit_rate_at(comb, y, 0.01)[0]
    print(f"at 1%: cross-encoder {ours:.1%} vs {args.gate} {cos:.1%} = {ours / cos:.2f}x; with {args.gate} {both:.1%} = "
          f"{both / cos:.2f}x (calibration: {max(cal):.1%} at w {w:.2f}, {cal[0]:.1%} at w 0)")
    comb_ca = np.where(g_ca, p_ca / sx + w * cos_ca / sc, -1e9)
    for f, t, t2 in zip(vt.FHRS, thr, [vt.hit_rate_at(comb_ca, d.y[ca], f)[1] for f in vt.FHRS], strict=True):
        hr, fr = vt.at_threshold(p_te, y, t)
        hr2, fr2 = vt.at_threshold(comb, y, t2)
        print(f"  calibrated {f:.1%} threshold on test: cross-encoder hit {hr:.1%}, false hits {fr:.2%}; "
              f"with {args.gate} hit {hr2:.1%}, false hits {fr2:.2%}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        np.savez(Path(args.out) / f"round{r + 1}.npz", te=te, ca=ca, p_te=p_te, p_ca=p_ca, cos_te=cos_te,
                 cos_ca=cos_ca, train=rows, comb_te=comb)
    if args.save:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, args.save)
        print(f"wrote {args.save}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-train", type=int, default=0, help="train on at most N pairs per round (0: all)")
    ap.add_argument("--eval-every", type=int, default=0, help="score the calibration fold every N training pairs")
    ap.add_argument("--keep", type=float, default=0.35,
                    help="score only pairs whose base cosine is in the calibration fold's top share (a cascade)")
    ap.add_argument("--gate", choices=("cosine", "jaccard"), default="cosine",
                    help="what the cascade's first stage ranks by: base MiniLM cosine or word-piece overlap")
    ap.add_argument("--train-keep", type=float, default=0.5, help="train on the pairs with the top word-piece overlap")
    ap.add_argument("--cv-rounds", type=int, default=1)
    ap.add_argument("--first-round", type=int, default=1)
    ap.add_argument("--smoke", type=int, default=0, help="only N calibration and N test pairs (checks the code)")
    ap.add_argument("--probe", type=int, default=0, help="only time N training pairs of round 1")
    ap.add_argument("--out", default="/tmp/semcache", help="where each round's scores go")
    ap.add_argument("--save", default="", help="write the last round's fine-tuned weights (safetensors)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from tierwise.routers.features import Embedder

    t0 = time.time()
    pairs = vt.read_pairs(data_path())
    d = vt.pair_data(pairs, lambda t: (np.zeros((len(t), 1)), np.zeros((0, 1)), np.zeros(len(t) + 1, int)))
    st = Embedder()._load()
    tok = Tok(d.texts, st.tokenizer)
    folds = vt.fold_of(d, FOLDS, args.seed)
    print(f"{len(pairs)} pairs, {len(d.texts)} questions, {np.mean(tok.len):.1f} word pieces a question "
          f"({time.time() - t0:.0f} s)", flush=True)
    if args.probe:
        probe(d, tok, st[0].auto_model, cv_split(folds, 0)[0], args)
        return
    for r in range(args.first_round - 1, args.first_round - 1 + args.cv_rounds):
        run_round(d, tok, st, folds, r, args)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
