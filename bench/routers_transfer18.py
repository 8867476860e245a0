"""Issue 22, round 18 (session 35, transfer18): judged verdicts averaged over the token-vector neighbourhoods.

Round 17's `window-tokens` (the merged default, `T` here: the default `transfer` D's score plus 1.0 × (the mean raw
score of its 20 nearest among the last 1,000 requests − the window's mean), neighbours by the router's static token
vectors) averages the router's *own* scores, which rank unseen subjects at Spearman ~0.3–0.4. A route with online
validation also has judged verdicts: for a share of requests (its `shadow_rate`) both tiers answered and the judge
graded both. `JT:<rate>:<k>:<weight>` adds to T's placed score `weight` × (the mean judged gain, strong − weak, of the
request's `k` nearest judged past requests among the last 1,000 judged − the judged window's mean), in the same token
space, a request judged with probability `rate` (`routers/window.judged_draws`) and its verdict known to every later
request: the library's `judged_stream`, what a route and `tierwise eval --judged-rate` run. `ST:<rate>:<weight>`
(a bench reference a route cannot have): the judged mean of the request's true subject (round 16's `S`) added to T.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer16.py dump --proxy p11 --out /tmp/transfer18     # spent splits
    nice -n 5 .venv/bin/python bench/routers_transfer18.py dump --proxy p13 --out /tmp/transfer18     # this round's
    nice -n 5 .venv/bin/python bench/routers_transfer18.py read --proxy p11 --out /tmp/transfer18 --ci 100 \
      --candidates T,JT:0.1:10:1
    nice -n 5 .venv/bin/python bench/routers_transfer18.py registered --out /tmp/transfer18

Proxies: `lobo`, `p6`…`p12` (spent), `p13` (this round's fresh split, seed P13_SEED: read only by `registered` or
`--after-registration`), `indomain`.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import routers_transfer13 as r13
import routers_transfer14 as r14
import routers_transfer16 as r16
import routers_transfer17 as r17
from routers_transfer10 import proxy_parts

from tierwise.routers.window import judged_draws, judged_stream, stream_placed

P13_SEED = 20371206  # a seed no split used: …, P11 20351206, P12 20361206
ORDER_SEED = r16.ORDER_SEED
BASE = "T"  # the merged default: D placed by window-tokens (round 17)
REGISTERED = "JT:0.1:20:1"  # the registered candidate (bench/RESULTS.md, "Transfer round 18")
_scores17 = r17.scores
_load17 = r17.load
_parts16 = r16.parts


def parts(proxy: str) -> list[tuple[str, Any, Any]]:
    if proxy == "p13":
        return proxy_parts(proxy, {"p13": P13_SEED})[0]
    return _parts16(proxy)


def t_scores(f: dict[str, np.ndarray], with_options: bool) -> np.ndarray:
    return stream_placed(r16._scores13(f, "D", with_options, r14.CANDIDATES), f["tokens"], ORDER_SEED)


def judged_close(s: np.ndarray, vecs: np.ndarray, gain: np.ndarray, judged: np.ndarray, k: int, tau: float,
                 prior: float, size: int = 1000) -> np.ndarray:
    """T's scores plus (n / (n + prior)) × (the mean judged gain of those of the request's k nearest judged past
    requests whose cosine is at least tau, n of them − the judged window's mean); not in the library."""
    order = np.random.default_rng(ORDER_SEED).permutation(len(s))
    out = np.asarray(s, dtype=float).copy()
    seen: list[int] = []
    for i in order:
        if len(seen) >= k:
            past = np.array(seen[-size:])
            sims = vecs[past] @ vecs[i]
            top = np.argpartition(sims, len(past) - k)[len(past) - k:]
            sel = past[top[sims[top] >= tau]]
            if len(sel):
                out[i] += len(sel) / (len(sel) + prior) * (gain[sel].mean() - gain[past].mean())
        if judged[i]:
            seen.append(i)
    return out


def scores(f: dict[str, np.ndarray], c: str, with_options: bool = True,
           candidates: dict[str, tuple[str, ...]] = r16.CANDIDATES) -> np.ndarray:
    if c == "T":
        return t_scores(f, with_options)
    if c.startswith("JT:"):
        rate, k, w = c.split(":")[1:4]
        s = r16._scores13(f, "D", with_options, r14.CANDIDATES)
        return judged_stream(s, f["tokens"], f["strong"], f["weak"], judged_draws(len(s), float(rate), ORDER_SEED),
                             ORDER_SEED, judged_k=int(k), judged_weight=float(w))
    if c.startswith("JW:"):  # a preview: the judged weak-fails (1 − weak) in place of the gain
        rate, k, w = c.split(":")[1:4]
        s = r16._scores13(f, "D", with_options, r14.CANDIDATES)
        return judged_stream(s, f["tokens"], np.ones(len(s)), f["weak"], judged_draws(len(s), float(rate), ORDER_SEED),
                             ORDER_SEED, judged_k=int(k), judged_weight=float(w))
    if c.startswith("JC:"):  # after the verdict, a preview: judged neighbours closer than tau, shrunk by n / (n + prior)
        rate, k, tau, prior = c.split(":")[1:5]
        s = t_scores(f, with_options)
        return judged_close(s, f["tokens"], f["strong"] - f["weak"], judged_draws(len(s), float(rate), ORDER_SEED),
                            int(k), float(tau), float(prior))
    if c.startswith("ST:"):
        rate, w = c.split(":")[1:3]
        subj = np.unique(f["subjects"], return_inverse=True)[1]
        return r16.judged_placed(t_scores(f, with_options), np.eye(subj.max() + 1)[subj], f["strong"] - f["weak"],
                                 float(rate), 1, float(w), subject=subj)
    return _scores17(f, c, with_options, candidates)


def load(args: argparse.Namespace, proxy: str) -> dict[str, dict[str, np.ndarray]]:
    files = _load17(args, proxy)
    if files:
        ps = {p: (t, tr) for p, t, tr in parts(proxy) if p in files}
        for p, f in files.items():
            test, train = ps[p]
            f["tokens"] = r17.vectors(proxy, p, "tokens", list(test.prompts), list(train.prompts), args.out)
            for c in args.candidates.split(",") + [BASE, REGISTERED]:
                f[f"w_{c}"] = f["w_D"]
    return files


def main() -> None:
    ap = r13.arguments(18, 13, f"{BASE},{REGISTERED}")
    args = ap.parse_args()
    if args.what == "dump":
        r13.dump(args, r14.Instrumented14, r14.COLUMNS, r14.CANDIDATES, parts)
        return
    r16.parts = parts  # type: ignore[assignment]  # p13 for round 16/17's loaders
    r13.load = load  # type: ignore[assignment]
    r13.scores = scores  # type: ignore[assignment]
    cands = {**r16.CANDIDATES, **{c: r16.CANDIDATES["D"] for c in [*args.candidates.split(","), BASE, REGISTERED]}}
    if args.what == "read":
        r13.read(args, cands, fresh="p13", base=BASE)
    else:
        r13.registered(args, REGISTERED, cands, fresh="p13", base=BASE)


if __name__ == "__main__":
    main()
