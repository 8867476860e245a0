"""Issue 22, round 10 (session 29, transfer10): strong outcomes of format-limited subjects imputed before training.

The diagnosis of round 9 (bench/RESULTS.md, session 28, transfer9): GPT-4's MMLU answers were parsed from one token,
so in the quantitative subjects its recorded failures are about as frequent as Mixtral's (college mathematics 0.39 vs
0.35 right) and the gain label (strong − weak) is ~0 exactly where calculation makes the weak model fail. A router
trained on those labels cannot learn to route calculation up, which step-by-step data needs.

Candidate E, a label construction: on benchmarks run properly the frontier model fails a roughly fixed share of what
the weak model fails (GPT-4 / Mixtral failure-rate ratio 0.53 on MMLU's other subjects, 0.39 on GSM8K, 0.48 on the
issue's held-out set: 27.9% / 58.1%). A (source, subject) of at least MIN_ROWS training rows whose recorded ratio
is above TRUST (0.8, the bound transfer9's `trust=0.8` used, not re-chosen) is read as format-limited, and its strong
outcomes are replaced by their expectation under the ratio ρ of the other training rows, taking the strong model's
failures to lie among the weak model's: strong' = weak + (1 − ρ)(1 − weak), i.e. gain' = (1 − ρ) × weak fails.
The weak outcomes, and every other row, are untouched; E is `transfer-lsa` (C3) fitted on the imputed training
data, so the TF-IDF weak-fails member is unchanged and the two gain members (and the members' leave-subject-out
weights) read the imputed gain. Test outcomes are never imputed.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer10.py fit --proxy p3 --routers C3,E --out /tmp/transfer10
    nice -n 5 .venv/bin/python bench/routers_transfer10.py read --proxy p3 --out /tmp/transfer10
    nice -n 5 .venv/bin/python bench/routers_transfer10.py flags          # which subjects E imputes (full MMLU)
    nice -n 5 .venv/bin/python bench/routers_transfer10.py registered --proxy p5  # the rule, after `fit --proxy p5`, after `fit --proxy p5`

Proxies: `p3` (transfer8's P3: MMLU subjects, high-school mathematics out, seed 2026, 8 folds), `lobo` (train on
two benchmarks, score the third, as bench/routers_transfer.py), `p5` (this round's split: seed 20291206, 8 MMLU
folds, plus GSM8K trained on all of MMLU + MT-Bench; registered in bench/RESULTS.md before any E figure on it).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from routers_transfer_proxies import measure, paired_leads, subject_folds

from tierwise.evaluation.baselines import random_scores
from tierwise.evaluation.dataset import OutcomeDataset, concat, unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers import make_router
from tierwise.routers.transfer import sources

TRUST = 0.8
MIN_ROWS = 50
P5_SEED = 20291206


def flags(data: OutcomeDataset) -> tuple[np.ndarray, float, list[tuple[str, str, float, float, int]]]:
    """Rows of format-limited (source, subject)s, the failure-rate ratio ρ of the other rows, and the flagged list."""
    src, subj = sources(data), np.array(data.subjects)
    strong, weak = np.asarray(data.strong, float), np.asarray(data.weak, float)
    keys = np.array([f"{a}\x00{b}" for a, b in zip(src, subj, strict=True)])
    flagged = np.zeros(len(keys), bool)
    listed = []
    for k in np.unique(keys):
        i = keys == k
        fs, fw = 1 - strong[i].mean(), 1 - weak[i].mean()
        if i.sum() >= MIN_ROWS and fw > 0 and fs > TRUST * fw:
            flagged |= i
            listed.append((*k.split("\x00"), float(strong[i].mean()), float(weak[i].mean()), int(i.sum())))
    rest = ~flagged
    rho = float((1 - strong[rest]).sum() / max((1 - weak[rest]).sum(), 1e-12))
    return flagged, rho, listed


def impute(data: OutcomeDataset) -> OutcomeDataset:
    """The training data with format-limited subjects' strong outcomes replaced by their expectation."""
    flagged, rho, _ = flags(data)
    strong, weak = np.asarray(data.strong, float).copy(), np.asarray(data.weak, float)
    strong[flagged] = weak[flagged] + (1 - rho) * (1 - weak[flagged])
    return replace(data, strong=strong)


def proxy_parts(proxy: str, seeds: dict[str, int]) -> tuple[list[tuple[str, OutcomeDataset, OutcomeDataset]],
                                                             dict[str, OutcomeDataset], dict[str, OutcomeDataset]]:
    """(part, test, train) per part of `lobo` or of a split of MMLU's subjects into 8 (seed `seeds[proxy]`, high-school
    mathematics out, trained on the rest of MMLU + GSM8K + MT-Bench), every training part unit-scaled; and the three
    benchmarks, raw and unit-scaled. Rounds 10 and 11 share it."""
    raw = {n: load_benchmark(n) for n in ("mmlu", "gsm8k", "mt-bench")}
    unit = {n: unit_scale(d) for n, d in raw.items()}
    if proxy == "lobo":
        return [(t, raw[t], concat([unit[n] for n in raw if n != t], f"all-but-{t}")) for t in raw], raw, unit
    mmlu = raw["mmlu"].without_subjects(["high_school_mathematics"], name="mmlu")
    subj = np.array(mmlu.subjects)
    out = []
    for part, members in subject_folds(list(subj), 8, seeds[proxy]).items():
        inside = np.isin(subj, members)
        train = concat([unit_scale(mmlu.where(~inside, "mmlu")), unit["gsm8k"], unit["mt-bench"]], f"all-but-{part}")
        out.append((part, mmlu.where(inside, part), train))
    return out, raw, unit


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    """(part, test, train) per part of a proxy; every training part unit-scaled, as the earlier rounds."""
    out, raw, unit = proxy_parts(proxy, {"p3": 2026, "p5": P5_SEED})
    if proxy == "p5":  # GSM8K, step-by-step labels, trained on all of MMLU + MT-Bench (as LOBO's gsm8k part)
        out.append(("gsm8k", raw["gsm8k"], concat([unit["mmlu"], unit["mt-bench"]], "all-but-gsm8k")))
    return out


def fit(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    want = [p for p in args.parts.split(",") if p]
    for part, test, train in parts(args.proxy):
        if want and part not in want:
            continue
        for name in args.routers.split(","):
            path = args.out / f"{args.proxy}--{part}--{name}.npy"
            if path.exists():
                continue
            t0 = time.time()
            data = impute(train) if name == "E" else train
            scores = make_router("transfer-lsa").fit(data).score(test)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as f:
                np.save(f, np.asarray(scores, float))
            tmp.replace(path)
            print(f"<!-- {args.proxy} {part} {name}: {time.time() - t0:.0f} s -->", flush=True)


def read(args: argparse.Namespace) -> None:
    tests = {p: t for p, t, _ in parts(args.proxy)}
    want = [p for p in args.parts.split(",") if p] or list(tests)
    names = [p for p in want if all((args.out / f"{args.proxy}--{p}--{r}.npy").exists() for r in ("C3", "E"))]
    rows: dict[str, dict[str, tuple[float, float, float, str]]] = {"random": {}, "C3": {}, "E": {}}
    leads = {}
    for p in names:
        t = tests[p]
        sc = {
            "random": random_scores(t, 0),
            **{r: np.load(args.out / f"{args.proxy}--{p}--{r}.npy") for r in ("C3", "E")},
        }
        for r, v in sc.items():
            rows[r][p] = measure(v, t, args.ci)
        leads[p] = paired_leads(sc["E"], sc["C3"], t, args.ci)
    print(f"\n{args.proxy} (APGR, 95% interval; ~ not above random with confidence, ↓ below)\n")
    print(
        "| router | " + " | ".join(f"{p} ({len(tests[p])})" for p in names) + " | worst lower bound | mean |"
    )
    print("|---|" + "---|" * (len(names) + 2))
    for r, v in rows.items():
        print(
            f"| {r} | "
            + " | ".join(f"{v[p][0]:.3f} ({v[p][1]:.3f}–{v[p][2]:.3f}){v[p][3]}" for p in names)
            + f" | {min(v[p][1] for p in names):.3f} | {np.mean([v[p][0] for p in names]):.3f} |"
        )
    cells = []
    for p in names:
        x = leads[p][np.isfinite(leads[p])]
        cells.append(
            f"{rows['E'][p][0] - rows['C3'][p][0]:+.3f} ({np.quantile(x, 0.025):+.3f}…{np.quantile(x, 0.975):+.3f})"
        )
    groups = [("all", names)]
    if args.proxy == "p5":
        groups = [
            ("MMLU folds", [p for p in names if p.startswith("fold")]),
            ("gsm8k", [p for p in names if p == "gsm8k"]),
        ]
    print("| E − C3, paired | " + " | ".join(cells) + " | | |")
    for label, ps in groups:
        if not ps:
            continue
        m = np.mean(np.stack([leads[p] for p in ps]), axis=0)
        m = m[np.isfinite(m)]
        point = np.mean([rows["E"][p][0] - rows["C3"][p][0] for p in ps])
        print(
            f"\nmean paired lead of E over C3, {label} ({len(ps)} parts): {point:+.3f} "
            f"({np.quantile(m, 0.025):+.3f}…{np.quantile(m, 0.975):+.3f})"
        )


def registered(args: argparse.Namespace) -> None:
    """The registered rule on P5 (bench/RESULTS.md, session 29, transfer10), from the saved scores (`--proxy p5`;
    `--proxy p3` reads the preview's folds the same way)."""
    _, _, listed = flags(unit_scale(load_benchmark("mmlu")))
    flagged = sorted({s for _, s, *_ in listed})
    print("flagged subjects (full MMLU):", ", ".join(flagged))
    tests = {p: t for p, t, _ in parts(args.proxy)}
    folds = [p for p in tests if p.startswith("fold")]
    leads, verdicts = {}, []
    print("\n| part | questions scored | C3 | E | E − C3, paired (95%) | E vs random |")
    print("|---|---|---|---|---|---|")
    for p, t in tests.items():
        c, e = (np.load(args.out / f"{args.proxy}--{p}--{r}.npy") for r in ("C3", "E"))
        keep = ~np.isin(np.array(t.subjects), flagged) if p != "gsm8k" else np.ones(len(t.strong), bool)
        for view, m in ((("trusted" if p != "gsm8k" else "all"), keep), ("whole", np.ones(len(keep), bool))):
            if view == "whole" and p == "gsm8k":
                continue
            d = _Sub(t, m)
            pl = paired_leads(e[m], c[m], d, args.ci)
            x = pl[np.isfinite(pl)]
            ac, ae = measure(c[m], d, args.ci), measure(e[m], d, args.ci)
            lo, hi = float(np.quantile(x, 0.025)), float(np.quantile(x, 0.975))
            print(
                f"| {p} {view} | {int(m.sum())} | {ac[0]:.3f} ({ac[1]:.3f}–{ac[2]:.3f}){ac[3]} | "
                f"{ae[0]:.3f} ({ae[1]:.3f}–{ae[2]:.3f}){ae[3]} | {ae[0] - ac[0]:+.3f} ({lo:+.3f}…{hi:+.3f}) | "
                f"{ae[3].strip() or 'above'} |"
            )
            if view == "whole" or p == "gsm8k":
                verdicts.append((f"veto: {p} whole not below random with confidence", ae[3].strip() != "↓"))
            if view != "whole":
                leads[p] = pl
                verdicts.append(
                    (
                        f"veto: {p} {view} not below C3 with confidence by > 0.02",
                        not (hi < 0 and ae[0] - ac[0] < -0.02),
                    )
                )
                if p == "gsm8k":
                    verdicts.append(("1. gsm8k: lead > 0, lower end > 0", ae[0] - ac[0] > 0 and lo > 0))
    m = np.mean(np.stack([leads[p] for p in folds]), axis=0)
    m = m[np.isfinite(m)]
    point = float(np.mean([_point(args, tests[p], p, flagged) for p in folds]))
    lo = float(np.quantile(m, 0.025))
    print(
        f"\nMMLU folds, trusted subjects: mean paired lead {point:+.3f} ({lo:+.3f}…{np.quantile(m, 0.975):+.3f})"
    )
    verdicts.append(
        ("2. MMLU folds trusted: mean lead >= -0.01 and lower end > -0.02", point >= -0.01 and lo > -0.02)
    )
    for name, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print("E passes its registered rule" if all(ok for _, ok in verdicts) else "E fails its registered rule")


def _point(args: argparse.Namespace, t: OutcomeDataset, p: str, flagged: list[str]) -> float:
    from tierwise.evaluation.metrics import apgr, routing_curve

    c, e = (np.load(args.out / f"{args.proxy}--{p}--{r}.npy") for r in ("C3", "E"))
    m = ~np.isin(np.array(t.subjects), flagged)
    st, wk = np.asarray(t.strong, float)[m], np.asarray(t.weak, float)[m]
    return float(apgr(routing_curve(e[m], st, wk)) - apgr(routing_curve(c[m], st, wk)))


class _Sub:
    """The strong and weak outcomes of a part's questions under a mask (what `measure` and `paired_leads` read)."""

    def __init__(self, t: OutcomeDataset, m: np.ndarray) -> None:
        self.strong, self.weak = np.asarray(t.strong, float)[m], np.asarray(t.weak, float)[m]
        self.subjects = [s for s, k in zip(t.subjects, m, strict=True) if k]
        self.prompts = [s for s, k in zip(t.prompts, m, strict=True) if k]

    def __len__(self) -> int:
        return len(self.strong)


def explain(args: argparse.Namespace) -> None:
    """Why E and C3 differ on a part: per subject, the outcomes and each router's mean rank of its questions (from
    the saved scores); with `--refit`, both routers fitted again and each member's weight and APGR on the part."""
    from scipy.stats import rankdata

    from tierwise.evaluation.metrics import apgr, routing_curve

    want = [p for p in args.parts.split(",") if p]
    for p, test, train in parts(args.proxy):
        if want and p not in want:
            continue
        st, wk = np.asarray(test.strong, float), np.asarray(test.weak, float)
        sc = {r: np.load(args.out / f"{args.proxy}--{p}--{r}.npy") for r in ("C3", "E")}
        ranks = {r: rankdata(v) / len(v) for r, v in sc.items()}
        subj = np.array(test.subjects)
        print(f"\n{args.proxy} {p}: subject, questions, strong, weak, mean rank C3 → E")
        for k in sorted(set(subj)):
            i = subj == k
            print(
                f"  {k:38s} {int(i.sum()):5d} {st[i].mean():6.2f} {wk[i].mean():6.2f}   "
                f"{ranks['C3'][i].mean():.2f} → {ranks['E'][i].mean():.2f}"
            )
        if not args.refit:
            continue
        for name, data in (("C3", train), ("E", impute(train))):
            r = make_router("transfer-lsa").fit(data)
            counts, vec, shape = r._features(test.prompts)
            m = r._member_scores(r._fit_dict(), counts, vec, shape, test.prompts)
            cells = [
                f"{k} w={w:.3f} APGR {apgr(routing_curve(m[:, j], st, wk)):.3f}"
                for j, (k, w) in enumerate(zip(r.members, r.weights, strict=True))
            ]
            print(f"  {name}: " + "; ".join(cells))


def unwritten(args: argparse.Namespace, parts_of, suffix: str = "") -> Iterator[  # noqa: ANN001
        tuple[str, OutcomeDataset, OutcomeDataset, Path]]:
    """(part, test, train, its file `<out>/<proxy>--<part>[--<suffix>].npz`) for each part of `args.proxy` asked for
    (`--parts`, all when empty) whose file is not written yet; `args.out` made. Rounds 10 and 11's `dump` share it."""
    args.out.mkdir(parents=True, exist_ok=True)
    want = [p for p in args.parts.split(",") if p]
    for p, test, train in parts_of(args.proxy):
        path = args.out / (f"{args.proxy}--{p}--{suffix}.npz" if suffix else f"{args.proxy}--{p}.npz")
        if (want and p not in want) or path.exists():
            continue
        yield p, test, train, path


def dump(args: argparse.Namespace) -> None:
    """Per part, both routers' member scores on the test questions, rank grids, weights, centre and scale, so that
    `attribute` can put E's pieces into C3 one at a time (a diagnostic on spent parts, after the verdict)."""
    for p, test, train, path in unwritten(args, parts, "members"):
        t0 = time.time()
        out = {"strong": np.asarray(test.strong, float), "weak": np.asarray(test.weak, float)}
        for name, data in (("C3", train), ("E", impute(train))):
            r = make_router("transfer-lsa").fit(data)
            counts, vec, shape = r._features(test.prompts)
            out[f"{name}_s"] = r._member_scores(r._fit_dict(), counts, vec, shape, test.prompts)
            assert r.rank_grid is not None
            out[f"{name}_grid"], out[f"{name}_w"] = r.rank_grid, r.weights
            out[f"{name}_centre"], out[f"{name}_scale"] = r.centre, r.scale
        np.savez(path, **out)
        print(f"<!-- {args.proxy} {p} members: {time.time() - t0:.0f} s -->", flush=True)


VARIANTS = {  # (which router each member's score and grid come from, whose member weights)
    "C3": (("C3", "C3", "C3"), "C3"),
    "E": (("E", "E", "E"), "E"),
    "E weights only": (("C3", "C3", "C3"), "E"),
    "E shape member only": (("C3", "C3", "E"), "C3"),
    "E TF-IDF gain member only": (("C3", "E", "C3"), "C3"),
    "E gain members, C3 weights": (("C3", "E", "E"), "C3"),
}


def attribute(args: argparse.Namespace) -> None:
    from tierwise.routers.transfer import _POINTS, _rank

    files = sorted(args.out.glob(f"{args.proxy}--*--members.npz"))
    table: dict[str, list[str]] = {v: [] for v in VARIANTS}
    leads: dict[str, list[np.ndarray]] = {v: [] for v in VARIANTS}
    names = []
    for path in files:
        f = dict(np.load(path))
        d = _Sub(_Outcomes(f["strong"], f["weak"]), np.ones(len(f["strong"]), bool))
        names.append(path.name.split("--")[1])
        sc = {}
        for v, (srcs, wsrc) in VARIANTS.items():
            cols = [
                _rank(f[f"{r}_s"][:, j], f[f"{r}_grid"][j], _POINTS)
                + 1e-3 * (f[f"{r}_s"][:, j] - f[f"{r}_centre"][j]) / f[f"{r}_scale"][j]
                for j, r in enumerate(srcs)
            ]
            sc[v] = np.average(np.stack(cols, axis=1), axis=1, weights=f[f"{wsrc}_w"])
        for v in VARIANTS:
            pl = paired_leads(sc[v], sc["C3"], d, args.ci)
            leads[v].append(pl)
            x = pl[np.isfinite(pl)] if v != "C3" else np.zeros(1)
            a = measure(sc[v], d, args.ci)[0]
            table[v].append(
                f"{a:.3f}"
                + ("" if v == "C3" else f" ({np.quantile(x, 0.025):+.3f}…{np.quantile(x, 0.975):+.3f})")
            )
    print(f"\n{args.proxy}: APGR (paired lead over C3, 95%)\n")
    print("| variant | " + " | ".join(names) + " | mean lead over C3 |")
    print("|---|" + "---|" * (len(names) + 1))
    for v in VARIANTS:
        m = np.mean(np.stack(leads[v]), axis=0)
        m = m[np.isfinite(m)]
        print(
            f"| {v} | " + " | ".join(table[v]) + f" | {np.mean(m):+.3f} ({np.quantile(m, 0.025):+.3f}…"
            f"{np.quantile(m, 0.975):+.3f}) |"
        )


class _Outcomes:
    def __init__(self, strong: np.ndarray, weak: np.ndarray) -> None:
        self.strong, self.weak = strong, weak
        self.subjects = [""] * len(strong)
        self.prompts = [""] * len(strong)


def show_flags(args: argparse.Namespace) -> None:
    for name, data in (
        ("full MMLU", unit_scale(load_benchmark("mmlu"))),
        (
            "MMLU + GSM8K + MT-Bench",
            concat([unit_scale(load_benchmark(n)) for n in ("mmlu", "gsm8k", "mt-bench")], "all"),
        ),
    ):
        flagged, rho, listed = flags(data)
        print(f"{name}: {len(listed)} subjects, {int(flagged.sum())} rows imputed, rho {rho:.3f}")
        for src, sub, s, w, n in listed:
            print(f"  {src}:{sub} strong {s:.2f} weak {w:.2f} ({n})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "what",
        choices=("fit", "read", "flags", "registered", "explain", "dump", "attribute"),
    )
    ap.add_argument("--proxy", default="p3", choices=("p3", "lobo", "p5"))
    ap.add_argument("--routers", default="C3,E")
    ap.add_argument("--parts", default="", help="only these parts, comma-separated")
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument(
        "--refit", action="store_true", help="explain: also refit both routers and show their members"
    )
    ap.add_argument("--out", type=Path, default=Path("/tmp/transfer10"))
    args = ap.parse_args()
    {
        "fit": fit,
        "read": read,
        "flags": show_flags,
        "registered": registered,
        "explain": explain,
        "dump": dump,
        "attribute": attribute,
    }[args.what](args)


if __name__ == "__main__":
    main()
