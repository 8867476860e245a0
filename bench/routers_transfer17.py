"""Issue 22, round 17 (session 34, transfer17): neighbourhoods that find a subject, for the windowed placement.

Round 16's windowed placement (`tierwise.routers.window`: a request's score plus WEIGHT × (the mean raw score of its K
nearest among the last SIZE requests − the window's mean)) failed on P11, and its post-hoc look says the neighbourhood
is what fails: the router's training-profile LSA does not gather an unseen subject's questions together. Here the
same window with other neighbourhoods (`space`):

- `lsa`     the training profile's LSA (round 16; fitted on half the part's training prompts);
- `static`  the static token vectors distilled from all-MiniLM-L6-v2 (`routers/static_tokens.py`, the table
            `transfer`'s options member already carries), summed over the prompt's tokens with SIF weights from
            the part's training prompts: a tokenizer and a table look-up per request, no transformer;
- `tokens`  the same table with the SIF weights `transfer`'s options member fits (frequencies among the training
            questions' options): exactly the router's own `vectors.encode`, so a saved `transfer` router has it;
- `minilm`  all-MiniLM-L6-v2's sentence embedding of the prompt (a full forward pass per request: 20–30 ms of CPU,
            over the 2 ms budget unless shift detection runs in that space; a reference);
- `refit`   an LSA re-fitted on the window's own traffic every REFIT_EVERY requests (64 dims of hashed TF-IDF fitted
            on the last SIZE prompts), the window re-encoded each time.

`subjects` measures, streamed in the arrival order of round 16 (`default_rng(0).permutation`), how often a request's
K nearest past requests in the window share its subject (against the share of the window that does: what random
neighbours would give). `read` adds `W:<space>:<size>:<k>:<weight>` to round 16's candidates (dumps of round 16's kind:
`routers_transfer16.py dump`). Vectors are cached beside the dumps (`<proxy>--<part>--<space>.npy`); MiniLM's pass is
cached on disk (`EmbeddingCache` in `<out>/emb`) so folds and splits do not re-embed.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer17.py subjects --proxies p10,p11,p8,p9 --spaces lsa,tokens,static
    nice -n 5 .venv/bin/python bench/routers_transfer17.py read --proxy p11 --out /tmp/transfer17 \
      --candidates D,W:lsa:1000:20:1,W:static:1000:20:1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import routers_transfer13 as r13
import routers_transfer16 as r16

from tierwise.routers.window import SIZE, K

SPACES = ("lsa", "static", "tokens", "minilm", "refit")
REFIT_EVERY = 100  # requests between re-fits of the `refit` space's LSA
REFIT_MIN = 200  # below this many prompts in the window the `refit` space keeps its last fit (none: no placement)
ORDER_SEED = r16.ORDER_SEED
OUT = Path("/tmp/transfer17")


def static_vectors(train: list[str], test: list[str]) -> np.ndarray:
    from tierwise.routers.static_tokens import StaticTokenVectors

    return StaticTokenVectors().fit(train).encode(test)


def token_vectors(train: list[str], test: list[str]) -> np.ndarray:
    """What a fitted `transfer` router's options member reads a whole prompt as (`router.vectors.encode`)."""
    from tierwise.routers.options import verbal_options
    from tierwise.routers.static_tokens import StaticTokenVectors

    return StaticTokenVectors().fit([o for p in train for o in verbal_options(p)]).encode(test)


def minilm_vectors(test: list[str], out: Path) -> np.ndarray:
    from tierwise.routers.dense import EmbeddingVectors
    from tierwise.routers.embedding_cache import EmbeddingCache

    return EmbeddingVectors(cache=EmbeddingCache(out / "emb")).encode(test)


def vectors(proxy: str, part: str, space: str, test: list[str], train: list[str], out: Path) -> np.ndarray:
    """A part's test prompts in `space` (not `refit`, which changes as the window moves), cached as .npy."""
    path = out / f"{proxy}--{part}--{space}.npy"
    if path.exists():
        return np.load(path)
    if space == "lsa":
        from tierwise.routers.shift import TrainingProfile

        v = TrainingProfile.fit(train).lsa.encode(test)
    elif space == "static":
        v = static_vectors(train, test)
    elif space == "tokens":
        v = token_vectors(train, test)
    elif space == "minilm":
        v = minilm_vectors(test, out)
    else:
        raise ValueError(space)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, v)
    os.replace(tmp, path)  # processes reading one proxy at once never see half a file
    return v


def refit_stream(prompts: list[str], order: np.ndarray, size: int = SIZE, every: int = REFIT_EVERY,
                 minimum: int = REFIT_MIN) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each request in `order`: (its vector, the window's indices, their vectors), all in the LSA last fitted on
    the window (re-fitted every `every` requests once it holds `minimum`); an empty window before the first fit."""
    from tierwise.routers.dense import LsaVectors

    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    lsa = None
    win_vecs = np.zeros((0, 64), np.float32)
    for j, i in enumerate(order):
        past = order[max(0, j - size):j]
        if len(past) >= minimum and (lsa is None or j % every == 0):
            lsa = LsaVectors(dims=64).fit([prompts[p] for p in past])
            win_vecs = lsa.encode([prompts[p] for p in past])
            win_idx = past
        if lsa is None:
            out.append((np.zeros(64, np.float32), past[:0], win_vecs[:0]))
            continue
        v = lsa.encode_one(prompts[i])  # requests after a fit join the window in that fit's space
        out.append((v, win_idx, win_vecs))
        win_idx = np.append(win_idx, i)[-size:]
        win_vecs = np.vstack([win_vecs, v[None, :]])[-size:]
    return out


def refit_placed(s: np.ndarray, prompts: list[str], size: int = SIZE, k: int = K, weight: float = 1.0) -> np.ndarray:
    order = np.random.default_rng(ORDER_SEED).permutation(len(s))
    out = np.asarray(s, dtype=float).copy()
    for i, (v, idx, vecs) in zip(order, refit_stream(prompts, order, size), strict=True):
        if len(idx) < k:
            continue
        near = idx[np.argpartition(vecs @ v, len(idx) - k)[len(idx) - k:]]
        out[i] = s[i] + weight * (s[near].mean() - s[idx].mean())
    return out


def same_subject(subj: np.ndarray, vecs: np.ndarray | None, prompts: list[str] | None, size: int = SIZE,
                 k: int = K) -> tuple[float, float]:
    """(mean share of a request's k nearest past requests in the window sharing its subject, the mean share of the
    window sharing it), streamed in the arrival order; requests with fewer than k before them are left out."""
    order = np.random.default_rng(ORDER_SEED).permutation(len(subj))
    hit, base = [], []
    if vecs is None:
        assert prompts is not None
        for i, (v, idx, wv) in zip(order, refit_stream(prompts, order, size), strict=True):
            if len(idx) < k:
                continue
            near = idx[np.argpartition(wv @ v, len(idx) - k)[len(idx) - k:]]
            hit.append(np.mean(subj[near] == subj[i]))
            base.append(np.mean(subj[idx] == subj[i]))
        return float(np.mean(hit)), float(np.mean(base))
    for j, i in enumerate(order):
        past = order[max(0, j - size):j]
        if len(past) >= k:
            sims = vecs[past] @ vecs[i]
            near = past[np.argpartition(sims, len(past) - k)[len(past) - k:]]
            hit.append(np.mean(subj[near] == subj[i]))
            base.append(np.mean(subj[past] == subj[i]))
    return float(np.mean(hit)), float(np.mean(base))


def subjects(args: argparse.Namespace) -> None:
    spaces = args.spaces.split(",")
    print(f"| split | fold | n | random ({args.k} of {args.size}) | " + " | ".join(spaces) + " |")
    print("|---|---|---|---|" + "---|" * len(spaces))
    tot: dict[str, dict[str, list[float]]] = {}
    for proxy in args.proxies.split(","):
        for part, test, train in r16.parts(proxy):
            subj = np.array(test.subjects)
            row, b = [], 0.0
            for sp in spaces:
                t0 = time.process_time()
                if sp == "refit":
                    h, b = same_subject(subj, None, list(test.prompts), args.size, args.k)
                else:
                    v = vectors(proxy, part, sp, list(test.prompts), list(train.prompts), args.out)
                    h, b = same_subject(subj, v, None, args.size, args.k)
                tot.setdefault(proxy, {}).setdefault(sp, []).append(h)
                row.append(f"{h:.3f}")
                print(f"  ({proxy} {part} {sp}: {time.process_time() - t0:.0f} s CPU)", file=sys.stderr)
            tot[proxy].setdefault("random", []).append(b)
            print(f"| {proxy} | {part} | {len(subj)} | {b:.3f} | " + " | ".join(row) + " |", flush=True)
    for proxy, d in tot.items():
        print(f"| {proxy} | mean | | {np.mean(d['random']):.3f} | "
              + " | ".join(f"{np.mean(d[sp]):.3f}" for sp in spaces) + " |")


# --- `read`: round 16's reader with W over the other spaces ----------------------------------------------------
_scores16 = r16.scores
_load16 = r16.load


def scores(f: dict[str, np.ndarray], c: str, with_options: bool = True,
           candidates: dict[str, tuple[str, ...]] = r16.CANDIDATES) -> np.ndarray:
    if c.startswith("W:") and c.split(":")[1] in ("static", "tokens", "minilm", "refit"):
        from tierwise.routers.window import stream_placed

        space, size, k, w = c.split(":")[1:]
        s = r16._scores13(f, r16.BASE, with_options, r16.r14.CANDIDATES)
        if space == "refit":
            return refit_placed(s, list(f["prompts"]), int(size), int(k), float(w))
        return stream_placed(s, f[space], ORDER_SEED, int(size), int(k), float(w))
    return _scores16(f, c, with_options, candidates)


def load(args: argparse.Namespace, proxy: str) -> dict[str, dict[str, np.ndarray]]:
    files = _load16(args, proxy)
    want = {c.split(":")[1] for c in args.candidates.split(",") if c.startswith("W:")} & {"static", "tokens", "minilm"}
    if files and want:
        ps = {p: (t, tr) for p, t, tr in r16.parts(proxy) if p in files}
        for p, f in files.items():
            test, train = ps[p]
            for sp in want:
                f[sp] = vectors(proxy, p, sp, list(test.prompts), list(train.prompts), args.out)
    return files


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "subjects":
        ap = argparse.ArgumentParser()
        ap.add_argument("what")
        ap.add_argument("--proxies", default="p8,p9,p10,p11")
        ap.add_argument("--spaces", default="lsa,static,refit")
        ap.add_argument("--size", type=int, default=SIZE)
        ap.add_argument("-k", type=int, default=K)
        ap.add_argument("--out", type=Path, default=OUT)
        args = ap.parse_args()
        if any(p in ("p12",) for p in args.proxies.split(",")):
            raise SystemExit("p12 is this round's fresh split: not measured before the rule is committed")
        args.out.mkdir(parents=True, exist_ok=True)
        subjects(args)
        return
    ap = r13.arguments(17, 12, f"D,{REGISTERED}")
    ap._option_string_actions["--proxy"].choices = (*ap._option_string_actions["--proxy"].choices, "p11", "p12")
    args = ap.parse_args()
    r13.load = load  # type: ignore[assignment]
    r13.scores = scores  # type: ignore[assignment]
    cands = {**r16.CANDIDATES, **{c: r16.CANDIDATES[r16.BASE] for c in args.candidates.split(",")
                                  if c.startswith(("W:", "J:", "S:"))}}
    if args.what == "read":
        r13.read(args, cands, fresh="p12", base=r16.BASE)
    elif args.what == "registered":
        r13.registered(args, REGISTERED, cands, fresh="p12", base=r16.BASE)
    else:
        raise SystemExit("dumps: bench/routers_transfer16.py dump (round 16's kind)")


REGISTERED = "W:tokens:1000:20:1"  # the registered candidate (bench/RESULTS.md, "Transfer round 17")

if __name__ == "__main__":
    main()
