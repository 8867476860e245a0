"""Issue 22, round 24 (session 38, transfer24): fits of the library's default `transfer` (with its training bank)
saved per part, and beside each a dump of what a bank candidate reads (bench/transfer24_candidates.py).

`fit --proxy <p>` fits `transfer-lsa-options` (the router `transfer` names, carrying its bank: routers/bank.py) on
each part's training side, saves it with `save_router` (/tmp/transfer24/<proxy>--<part>.json/.npz), loads it back with
`load_router` and dumps (<proxy>--<part>.dump.npz): the test outcomes and subjects, the loaded router's raw scores
(`s_D`), the test prompts' static token vectors (`tokens`, what `window-tokens` reads) and, per training row (the
bank's rows, in order), its source and its centred gain and weak failure. Prints timings only (no APGR).

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer24.py fit --proxy p16,lobo,indomain   # several processes share parts
    nice -n 5 .venv/bin/python bench/routers_transfer24.py screen --proxy p16 --candidates T,KTW:0.25
    nice -n 5 .venv/bin/python bench/routers_transfer24.py fit --proxy p17                  # after the registration
    nice -n 5 .venv/bin/python bench/routers_transfer24.py registered --ci 300

Proxies: `p11`-`p16` (spent), `lobo`, `indomain`, `p17` (seed P17_SEED, fresh: fitted only once `REGISTERED` names the
rule committed in bench/RESULTS.md, "Transfer round 24").
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import routers_transfer16 as r16
import routers_transfer18 as r18
import routers_transfer21 as r21
import routers_transfer22 as r22
import routers_transfer23 as r23
from routers_transfer10 import proxy_parts

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.metrics import apgr, routing_curve

P17_SEED = 20411206  # the fresh split (P1-P16 spent)
SEEDS = {"p11": r16.P11_SEED, "p12": r16.P12_SEED, "p13": r18.P13_SEED, "p14": r21.P14_SEED, "p15": r22.P15_SEED,
         "p16": r23.P16_SEED, "p17": P17_SEED}
FRESH = "p17"
# registered in bench/RESULTS.md ("Transfer round 24") before any P17 fit: the bank term at weight 0.25 with the
# look-up of the 200 nearest bank rows at temperature 0.1 (routers/bank.py K, TEMPERATURE), against T
REGISTERED = "KTW:0.25:200:0.1"
WEIGHT = 0.25
MIN_LEAD = 0.003
SPEC = "transfer-lsa-options"
OUT = Path("/tmp/transfer24")


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    if proxy in SEEDS:
        return proxy_parts(proxy, {proxy: SEEDS[proxy]})[0]
    return r16.parts(proxy)  # lobo, indomain


def side(router: Any, test: OutcomeDataset, train: OutcomeDataset) -> dict[str, np.ndarray]:
    from tierwise.routers.transfer import _unit_outcomes, centred_within, sources

    src = sources(train)
    weak = np.zeros(len(src))
    for s in np.unique(src):
        weak[src == s] = _unit_outcomes(train.where(src == s, s))[1]
    from tierwise.routers.bank import training_gains

    return {"strong": np.asarray(test.strong, float), "weak": np.asarray(test.weak, float),
            "subjects": np.array(test.subjects), "s_D": np.asarray(router.score(test), float),
            "tokens": router.vectors.encode(list(test.prompts)).astype(np.float32),
            "train_src": np.array(src), "train_gain": training_gains(train),
            "train_wf": centred_within(1 - weak, src)}


def fit(args: argparse.Namespace) -> None:
    from tierwise.routers import load_router, make_router
    from tierwise.routers.base import save_router

    args.out.mkdir(parents=True, exist_ok=True)
    for proxy in args.proxy.split(","):
        if proxy == FRESH and not REGISTERED:
            raise SystemExit(f"{FRESH} is fitted only once its rule is committed (REGISTERED)")
        want = [p for p in args.parts.split(",") if p]
        for p, test, train in parts(proxy):
            path = args.out / f"{proxy}--{p}"
            if (want and p not in want) or path.with_suffix(".dump.npz").exists():
                continue
            claim = path.with_suffix(".claim")
            try:
                os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            t0 = time.time()
            save_router(make_router(SPEC).fit(train), path)
            r = load_router(str(path) + ".json")
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **side(r, test, train))
            tmp.replace(path.with_suffix(".dump.npz"))
            claim.unlink()
            print(f"<!-- {proxy} {p}: {time.time() - t0:.0f} s -->", flush=True)


def load(out: Path, proxy: str) -> dict[str, dict[str, Any]]:
    """The parts' dumps, each with its saved router's path (`router`), bank (`bank`, routers/bank.py) and its
    training rows' subjects (`train_subj`, the bank's rows in order)."""
    from tierwise.routers import load_router

    files = {}
    for p, _t, train in parts(proxy):
        path = out / f"{proxy}--{p}"
        if path.with_suffix(".dump.npz").exists():
            f: dict[str, Any] = dict(np.load(path.with_suffix(".dump.npz"), allow_pickle=False))
            f["train_subj"] = np.array(train.subjects)
            f["router"] = str(path) + ".json"
            f["bank"] = load_router(f["router"]).bank
            files[p] = f
    return files


def screen(args: argparse.Namespace) -> None:
    """Point estimates only (spent splits, LOBO, in-domain): each candidate's APGR lead over the first, per part and
    the parts' mean (in-domain: each benchmark's 5 parts pooled)."""
    import transfer24_candidates as cand

    if args.proxy == FRESH and not args.after_registration:
        raise SystemExit("the screen reads spent splits only (P17: --after-registration, descriptive)")
    files = load(args.out, args.proxy)
    cands = [c for c in args.candidates.split(",") if c]
    if args.proxy == "indomain":
        groups = {n: [files[k] for k in sorted(files) if k.startswith(n + "-")] for n in ("mmlu", "gsm8k")}
        groups = {n: fs for n, fs in groups.items() if fs}
    else:
        groups = {p: [f] for p, f in files.items()}

    def a(c: str, fs: list[dict[str, Any]]) -> float:
        st, wk = np.concatenate([f["strong"] for f in fs]), np.concatenate([f["weak"] for f in fs])
        return float(apgr(routing_curve(np.concatenate([cand.scores(f, c) for f in fs]), st, wk)))

    tab = {c: {g: a(c, fs) for g, fs in groups.items()} for c in cands}
    print(f"| {args.proxy} ({len(groups)} parts) | " + " | ".join(groups) + " | mean | lowest |")
    print("|---|" + "---|" * (len(groups) + 2))
    for c in cands:
        d = [tab[c][g] - (0 if c == cands[0] else tab[cands[0]][g]) for g in groups]
        print(f"| {c} | " + " | ".join(f"{x:+.3f}" if c != cands[0] else f"{x:.3f}" for x in d)
              + f" | {np.mean(d):+.3f} | {min(d):+.3f} |", flush=True)


def library_scores(path: str, test: OutcomeDataset) -> dict[str, np.ndarray]:
    """T and the candidate on one fresh part through `tierwise eval`'s `evaluate`: the saved router (its bank saved
    with this round's k and temperature) loaded by `load_router`, placed by `window-tokens` with `bank_weight` 0 / 0.25."""
    from tierwise.evaluation.replay import evaluate
    from tierwise.routers import load_router

    b = load_router(path).bank
    assert (b.k, b.temperature) == (200, 0.1), (b.k, b.temperature)
    out = {"strong": np.asarray(test.strong, float), "weak": np.asarray(test.weak, float)}
    for name, w in (("T", 0.0), (REGISTERED, WEIGHT)):
        out[name] = evaluate(test, [path], baselines=False, placement="window-tokens", bank_weight=w)[0].scores
    return out


def registered(args: argparse.Namespace) -> None:
    """The rule registered in bench/RESULTS.md ("Transfer round 24"): P17 through the library path; in-domain and
    LOBO (deterministic) from this round's saved routers through the library's `place` at the registered look-up."""
    import transfer24_candidates as cand
    from routers_transfer_proxies import indomain_rule, paired_rows

    c = REGISTERED

    def pick(f: dict[str, Any], name: str) -> np.ndarray:
        return np.asarray(f[name], float)

    def fixed(f: dict[str, Any]) -> dict[str, Any]:
        return {"strong": f["strong"], "weak": f["weak"], "T": cand.scores(f, "T"), c: cand.scores(f, c)}

    files = {}
    for p, test, _train in parts(FRESH):
        path = args.out / f"{FRESH}--{p}.json"
        if path.exists() and not path.with_suffix(".claim").exists():
            files[p] = library_scores(str(path), test)
    print(f"| P17 fold | n | T (default) | {c} | {c} − T, paired (95%) |\n|---|---|---|---|---|")
    leads, points, verdicts = paired_rows(files, "T", c, pick, args.ci, "3. veto: ")
    if files:
        m = np.mean(np.stack(leads), axis=0)
        m = m[np.isfinite(m)]
        point, lo, hi = float(np.mean(points)), float(np.quantile(m, 0.025)), float(np.quantile(m, 0.975))
        mean = {k: np.mean([apgr(routing_curve(f[k], f["strong"], f["weak"])) for f in files.values()])
                for k in ("T", c)}
        print(f"\nP17 mean paired lead of {c} over T ({len(files)} folds): {point:+.3f} ({lo:+.3f}…{hi:+.3f}); "
              f"T {mean['T']:.3f}, {c} {mean[c]:.3f}")
        verdicts.insert(0, (f"1. P17: {len(files)} of 8 folds, mean lead >= +{MIN_LEAD} and its 95% lower end > 0",
                            len(files) == 8 and point >= MIN_LEAD and lo > 0))
    else:
        verdicts.insert(0, ("1. P17: 8 folds fitted", False))
    verdicts += indomain_rule({k: fixed(f) for k, f in load(args.out, "indomain").items()}, "T", c, pick)
    lobo = load(args.out, "lobo")
    for p in ("gsm8k", "mmlu", "mt-bench"):
        if p not in lobo:
            verdicts.append((f"4. LOBO {p}: fitted", False))
            continue
        f = fixed(lobo[p])
        a, t = (float(apgr(routing_curve(f[k], f["strong"], f["weak"]))) for k in (c, "T"))
        verdicts.append((f"4. LOBO {p}: {c} {a:.3f} >= 0.58 (T {t:.3f})", a >= 0.58))
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print(f"{c} passes its registered rule" if all(ok for _, ok in verdicts) else
          f"{c} does not pass its registered rule (or the round is partial)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("fit", "screen", "registered"))
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--after-registration", action="store_true")
    ap.add_argument("--proxy", default="p16")
    ap.add_argument("--parts", default="")
    ap.add_argument("--candidates", default="T")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    {"fit": fit, "screen": screen, "registered": registered}[args.what](args)


if __name__ == "__main__":
    main()
