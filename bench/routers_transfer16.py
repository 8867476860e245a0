"""Issue 22, round 16 (session 34, transfer16): a windowed placement the gateway route can do.

Round 15 placed whole clusters of a scored *batch* (`routers/placement.py`); the gateway's `learned` route scores one
request at a time and could not. Candidate `W` (the library's `tierwise.routers.window`) places a request by the
requests the route has already seen: each request's score plus WEIGHT × (the mean raw score of its K nearest
neighbours among the last SIZE requests − the mean raw score of those SIZE), neighbours by cosine in the router's
training profile's LSA (64 dimensions of hashed TF-IDF, fitted on half the training prompts: `TrainingProfile.fit`,
what `--save` stores and the route has). It is computed online in a random arrival order of each evaluated part
(`numpy.random.default_rng(ORDER_SEED).permutation`), only past requests counting, from a fresh window per part. It
refits nothing: it reads round 14's kind of dumps (made here with today's library, in which the merged default is
round 14's `D`: see BASE) and the parts' prompts.

Preview variants `W:<space>:<size>:<k>:<weight>`: space `lsa` (the above) or `tfidf` (exact cosine of the profile's
hashed TF-IDF rows: a bench reference, not on the route). After the verdict: `C` (round 15's batch clusters of the
same default), `J:<rate>:<k>:<weight>` / `S:<rate>:<weight>` (placed by judged gains of past neighbours / of the
true subject: `judged_placed`).

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer16.py dump --proxy p11 --out /tmp/transfer16   # fresh
    nice -n 5 .venv/bin/python bench/routers_transfer16.py read --proxy p10 --out /tmp/transfer16   # spent
    nice -n 5 .venv/bin/python bench/routers_transfer16.py registered --out /tmp/transfer16

Proxies: `lobo`, `p6`…`p10` (spent), `p11` (this round's fresh split, seed P11_SEED; spent now), `p12` (the next
split: read only `--after-registration`), `indomain`.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import routers_transfer11 as r11
import routers_transfer13 as r13
import routers_transfer14 as r14
import routers_transfer15 as r15
from routers_transfer10 import proxy_parts

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.shift import TrainingProfile
from tierwise.routers.window import SIZE, WEIGHT, K, stream_placed

P11_SEED = 20351206  # a seed no split used: P3 2026, P4 20281206, …, P9 20331206, P10 20341206
P12_SEED = 20361206  # the next split (dumped after round 16's verdict, for a later round)
ORDER_SEED = 0  # the arrival order of each evaluated part
# The default as merged. Since round 14 the library's default *is* `strong="discount"`, so the dumps' MEMBERS columns
# (round 14's `D`) are already discounted and round 14's `A` (`wf-sr` for `tfidf-logit-wf`) discounts twice: in dumps
# made with today's library the default is `D`, not `A` (found at 08:00 on LOBO, before any P11 figure; RESULTS.md).
BASE = "D"
CANDIDATES = {**r14.CANDIDATES, "W": r14.CANDIDATES[BASE], "C": r14.CANDIDATES[BASE]}
REGISTERED = "W"
_scores13 = r13.scores


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    if proxy in ("p11", "p12"):
        return proxy_parts(proxy, {"p11": P11_SEED, "p12": P12_SEED})[0]
    return r15.parts(proxy)


def windowed(sims: np.ndarray, s: np.ndarray, order: np.ndarray, size: int, k: int, weight: float) -> np.ndarray:
    """The window's arithmetic on a precomputed similarity matrix (the `tfidf` reference)."""
    out = s.copy()
    for j, i in enumerate(order):
        past = order[max(0, j - size):j]
        if len(past) < k:
            continue
        near = past[np.argpartition(sims[i, past], len(past) - k)[len(past) - k:]]
        out[i] = s[i] + weight * (s[near].mean() - s[past].mean())
    return out


def judged_placed(s: np.ndarray, vecs: np.ndarray, gain: np.ndarray, rate: float, k: int, weight: float,
                  memory: int = 300, subject: np.ndarray | None = None) -> np.ndarray:
    """Each request (in the arrival order) placed by the judged gains (strong − weak: what a judged shadow pair tells)
    of its k nearest among the last `memory` judged past requests, less their mean; each request judged with
    probability `rate` (seeded), its verdict known to the requests after it. A preview of the direction round 15 left
    (a subject's level from judged answers of the user's own traffic); not in the library."""
    order = np.random.default_rng(ORDER_SEED).permutation(len(s))
    judged = np.random.default_rng(ORDER_SEED + 1).random(len(s)) < rate
    out = s.astype(float).copy()
    seen: list[int] = []
    for i in order:
        if len(seen) >= k:
            past = np.array(seen[-memory:])
            if subject is None:
                sims = vecs[past] @ vecs[i]
                near = past[np.argpartition(sims, len(past) - k)[len(past) - k:]]
            else:  # every judged past request of its subject (none yet: no move)
                near = np.array([j for j in seen if subject[j] == subject[i]] or [i])
                if len(near) == 1 and near[0] == i:
                    near = past
            out[i] = s[i] + weight * (gain[near].mean() - gain[past].mean())
        if judged[i]:
            seen.append(i)
    return out


def scores(f: dict[str, np.ndarray], c: str, with_options: bool = True,
           candidates: dict[str, tuple[str, ...]] = CANDIDATES) -> np.ndarray:
    if c.startswith("J:"):  # after the verdict, a preview: placed by the judged gains of past neighbours
        _, rate, k, w = c.split(":")
        return judged_placed(_scores13(f, BASE, with_options, r14.CANDIDATES), f["lsa"], f["strong"] - f["weak"],
                             float(rate), int(k), float(w))
    if c.startswith("S:"):  # after the verdict: J with the true subject as the neighbourhood (perfect clusters)
        _, rate, w = c.split(":")
        subj = np.unique(f["subjects"], return_inverse=True)[1]
        return judged_placed(_scores13(f, BASE, with_options, r14.CANDIDATES), np.eye(subj.max() + 1)[subj],
                             f["strong"] - f["weak"], float(rate), 1, float(w), subject=subj)
    if c == "C":  # after the verdict: round 15's batch placement of the same default, for comparison
        from tierwise.routers.placement import placed, traffic_clusters

        return placed(_scores13(f, BASE, with_options, r14.CANDIDATES), traffic_clusters(list(f["prompts"])))
    if not c.startswith("W"):
        return _scores13(f, c, with_options, r14.CANDIDATES)
    s = _scores13(f, BASE, with_options, r14.CANDIDATES)
    space, size, k, w = ("lsa", SIZE, K, WEIGHT) if c == "W" else c.split(":")[1:]
    size, k, w = int(size), int(k), float(w)
    if space == "lsa":
        return stream_placed(s, f["lsa"], ORDER_SEED, size, k, w)
    order = np.random.default_rng(ORDER_SEED).permutation(len(s))
    return windowed(f["tfidf_sims"], s, order, size, k, w)


def load(args: argparse.Namespace, proxy: str) -> dict[str, Any]:
    """Round 11's `load` with each part's profile-LSA vectors of its test prompts (cached beside the dumps as .npy;
    the profile fitted on the part's training prompts) and, for `tfidf` variants, their exact cosines."""
    files = r11.load(args, proxy)
    if not files:
        return files
    want_tfidf = any(c.startswith("W:tfidf") for c in args.candidates.split(","))
    ps = {p: (t, tr) for p, t, tr in parts(proxy) if p in files}
    for p, f in files.items():
        f["w_W"] = f["w_C"] = f[f"w_{BASE}"]
        for c in args.candidates.split(","):
            if c.startswith(("W:", "J:", "S:")):
                f[f"w_{c}"] = f[f"w_{BASE}"]
        test, train = ps[p]
        f["prompts"] = np.array(test.prompts)
        path = args.out / f"{proxy}--{p}--lsa.npy"
        prof = None
        if not path.exists():
            prof = TrainingProfile.fit(train.prompts)
            np.save(path, prof.lsa.encode(test.prompts))
        f["lsa"] = np.load(path)
        assert len(f["lsa"]) == len(f["strong"])
        if want_tfidf:
            prof = prof or TrainingProfile.fit(train.prompts)
            x = prof.lsa.tfidf.matrix(test.prompts)
            f["tfidf_sims"] = np.asarray((x @ x.T).todense(), dtype=np.float32)
    return files


def main() -> None:
    ap = r13.arguments(16, 11, "D,W")
    ap._option_string_actions["--proxy"].choices = (*ap._option_string_actions["--proxy"].choices, "p12")
    args = ap.parse_args()
    if args.what == "dump":
        r13.dump(args, r14.Instrumented14, r14.COLUMNS, r14.CANDIDATES, parts)
        return
    r13.load = load  # type: ignore[assignment]  # the LSA vectors beside the dumps
    r13.scores = scores  # type: ignore[assignment]  # W beside round 13/14's candidates
    if args.what == "read" and args.proxy == "p12" and not args.after_registration:
        raise SystemExit("p12 is read only once a rule for it is committed (--after-registration)")
    r13.read_or_registered(args, CANDIDATES, REGISTERED, "p11", BASE, ("W:", "J:", "S:"))


if __name__ == "__main__":
    main()
