"""Two domain-shift proxies inside MMLU for choosing a transfer router without the leave-one-benchmark-out
folds (issue 22): leave one MMLU *category* out (the MMLU repository's four: STEM, humanities, social
sciences, other; bench/routers_transfer_domains.py) and leave one MMLU *subject group* out (eight groups made
by merging the repository's seventeen subcategories; they cut across the categories, e.g. health + biology
spans STEM and "other"). Train on GSM8K + MT-Bench + MMLU without the part, score the part; MMLU
high-school mathematics (GPT-4's 3%: a parsing artefact) is left out everywhere. APGR with a 95% bootstrap
interval, `~` / `↓` as in bench/routers_transfer.py; per router the worst fold's lower bound, the
figure the pre-registered rule reads (bench/RESULTS.md, issue 22, session 15, round 2).

    HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python \\
        bench/routers_transfer_proxies.py --emb-cache /tmp/tw-emb-cache --routers transfer-lsa,... --ci 300 \\
        [--proxies category,group,subjfold,p4]   # p4: session 28 (transfer9), 8 seeded subject folds + GSM8K, MT-Bench

Fill the embedding cache first for routers with embedding members (bench/routers_transfer.py --warm).

`--against SPEC` (one of `--routers`; session 17's pre-registration reads it) adds, per proxy, each router's
paired lead over SPEC: per fold (95% interval on the same resamples) and the mean lead over the folds, whose
interval resamples the queries within every fold independently. `--save-scores DIR` keeps every fold's scores and
reads them back when present, so routers can be fitted in parallel runs and compared in a last one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from routers_transfer import build  # bench/ is on sys.path when this script runs
from routers_transfer_domains import CATEGORIES

from tierwise.evaluation.baselines import random_scores
from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.metrics import NUM_BINS, _apgr_rows, apgr, bootstrap_apgr, routing_curve
from tierwise.routers.embedding_cache import EmbeddingCache

GROUPS = {
    "math+cs+eng": ("abstract_algebra", "college_mathematics", "elementary_mathematics", "high_school_mathematics",
                    "high_school_statistics", "college_computer_science", "computer_security",
                    "high_school_computer_science", "machine_learning", "electrical_engineering"),
    "phys+chem": ("astronomy", "college_physics", "conceptual_physics", "high_school_physics", "college_chemistry",
                  "high_school_chemistry"),
    "health+bio": ("anatomy", "clinical_knowledge", "college_medicine", "human_aging", "medical_genetics", "nutrition",
                   "professional_medicine", "virology", "college_biology", "high_school_biology"),
    "philosophy": ("formal_logic", "logical_fallacies", "moral_disputes", "moral_scenarios", "philosophy",
                   "world_religions"),
    "history": ("high_school_european_history", "high_school_us_history", "high_school_world_history", "prehistory"),
    "law": ("international_law", "jurisprudence", "professional_law"),
    "econ+business+other": ("econometrics", "high_school_macroeconomics", "high_school_microeconomics",
                            "business_ethics", "management", "marketing", "global_facts", "miscellaneous",
                            "professional_accounting"),
    "politics+psych+culture": ("high_school_geography", "high_school_government_and_politics", "public_relations",
                               "security_studies", "us_foreign_policy", "high_school_psychology",
                               "professional_psychology", "human_sexuality", "sociology"),
}


# P4 (session 28, transfer9): a seed never used by a split before, registered in bench/RESULTS.md before any
# candidate figure on it; the split adds GSM8K and MT-Bench held out as in the leave-one-benchmark-out folds.
P4_SEED = 20281206


def subject_folds(subjects: list[str], k: int = 8, seed: int = 2026) -> dict[str, tuple[str, ...]]:
    """The third proxy (session 27, transfer8): MMLU's subjects (high-school mathematics out) shuffled with a fixed
    seed and dealt into `k` folds, so each held-out fold mixes subjects of several groups and categories."""
    order = [str(s) for s in np.random.default_rng(seed).permutation(sorted(set(subjects)))]
    return {f"fold{i}": tuple(order[i::k]) for i in range(k)}


def measure(scores: np.ndarray, d, rounds: int) -> tuple[float, float, float, str]:
    a = apgr(routing_curve(scores, d.strong, d.weak))
    ci = bootstrap_apgr(scores, d.strong, d.weak, rounds=rounds)
    lead = bootstrap_apgr(scores, d.strong, d.weak, against=random_scores(d, 0), rounds=rounds)
    star = "" if lead.low > 0 else (" ↓" if lead.high < 0 else " ~")
    return a, ci.low, ci.high, star


def label(spec: str) -> str:
    """A file name for a spec: itself when short, else a digest (specs with many shape counts are long)."""
    return spec.replace("/", "_") if len(spec) <= 80 else hashlib.sha1(spec.encode()).hexdigest()[:16]


def paired_leads(a: np.ndarray, b: np.ndarray, d, rounds: int, seed: int = 0) -> np.ndarray:
    """APGR(a) − APGR(b) on `rounds` resamples of the fold's queries (the same resamples for both)."""
    rng = np.random.default_rng(seed)
    ix = rng.integers(0, len(a), size=(rounds, len(a)))
    strong, weak = np.asarray(d.strong, float), np.asarray(d.weak, float)
    return _apgr_rows(a[ix], strong[ix], weak[ix], NUM_BINS) - _apgr_rows(b[ix], strong[ix], weak[ix], NUM_BINS)


class _D:
    """Dumped outcomes as the measures read a dataset (the dumps keep no prompts or subjects)."""

    def __init__(self, strong: np.ndarray, weak: np.ndarray) -> None:
        self.strong, self.weak = strong, weak
        self.subjects, self.prompts = [""] * len(strong), [""] * len(strong)

    def __len__(self) -> int:
        return len(self.strong)


Dump = dict[str, np.ndarray]


def apgr_table(groups: dict[str, list[Dump]], cands: list[str], base: str, score: Callable[[Dump, str], np.ndarray],
               rounds: int) -> None:
    """A Markdown table: per group of dumped parts (their test questions pooled) every candidate's APGR (95%; ~ not
    above random with confidence, ↓ below) and its paired lead over `base` (the same resamples); last, the means."""
    print("| part | n | random | " + " | ".join(cands) + " |")
    print("|---|---|---|" + "---|" * len(cands))
    leads: dict[str, list[np.ndarray]] = {c: [] for c in cands}
    points: dict[str, list[float]] = {c: [] for c in cands}
    for p, fs in groups.items():
        d = _D(np.concatenate([f["strong"] for f in fs]), np.concatenate([f["weak"] for f in fs]))
        sc = {c: np.concatenate([score(f, c) for f in fs]) for c in cands}
        rnd = measure(random_scores(d, 0), d, rounds)  # type: ignore[arg-type]
        cells = []
        for c in cands:
            a = measure(sc[c], d, rounds)
            pl = paired_leads(sc[c], sc[base], d, rounds)
            leads[c].append(pl)
            points[c].append(a[0])
            x = pl[np.isfinite(pl)]
            lead = "" if c == base else (f" {a[0] - points[base][-1]:+.3f} ({np.quantile(x, 0.025):+.3f}…"
                                         f"{np.quantile(x, 0.975):+.3f})")
            cells.append(f"{a[0]:.3f} ({a[1]:.3f}–{a[2]:.3f}){a[3]}{lead}")
        print(f"| {p} | {len(d)} | {rnd[0]:.3f}{rnd[3]} | " + " | ".join(cells) + " |")
    cells = []
    for c in cands:
        m = np.mean(np.stack(leads[c]), axis=0)
        m = m[np.isfinite(m)]
        cells.append(f"{np.mean(points[c]):.3f}" + ("" if c == base else
                     f" {np.mean(points[c]) - np.mean(points[base]):+.3f} ({np.quantile(m, 0.025):+.3f}…"
                     f"{np.quantile(m, 0.975):+.3f})"))
    print(f"| mean of {len(groups)} | | | " + " | ".join(cells) + " |")


def paired_rows(files: dict[str, Dump], base: str, cand: str, score: Callable[[Dump, str], np.ndarray], rounds: int,
                veto: str) -> tuple[list[np.ndarray], list[float], list[tuple[str, bool]]]:
    """A registered rule's table of `cand` against `base` per part (rows printed under the caller's head): the paired
    leads, the point leads and the per-part vetoes (`veto` leads their names)."""
    verdicts, leads, points = [], [], []
    for p, f in files.items():
        d = _D(f["strong"], f["weak"])
        a, b = score(f, base), score(f, cand)
        ab, ac = measure(a, d, rounds), measure(b, d, rounds)
        pl = paired_leads(b, a, d, rounds)
        x = pl[np.isfinite(pl)]
        lo, hi = float(np.quantile(x, 0.025)), float(np.quantile(x, 0.975))
        leads.append(pl)
        points.append(ac[0] - ab[0])
        print(f"| {p} | {len(d)} | {ab[0]:.3f} ({ab[1]:.3f}–{ab[2]:.3f}){ab[3]} | {ac[0]:.3f} ({ac[1]:.3f}–"
              f"{ac[2]:.3f}){ac[3]} | {ac[0] - ab[0]:+.3f} ({lo:+.3f}…{hi:+.3f}) |")
        verdicts.append((f"{veto}{p}: {cand} not below random with confidence", ac[3].strip() != "↓"))
        verdicts.append((f"{veto}{p}: {cand} not below {base} with confidence by > 0.02",
                         not (hi < 0 and points[-1] < -0.02)))
    return leads, points, verdicts


def indomain_rule(ind: dict[str, Dump], base: str, cand: str, score: Callable[[Dump, str], np.ndarray]
                  ) -> list[tuple[str, bool]]:
    """A registered rule's in-domain clause: per benchmark, `cand` pooled over its 5 folds within 0.01 of `base`."""
    verdicts = []
    for n in ("mmlu", "gsm8k"):
        fs = [ind[k] for k in sorted(ind) if k.startswith(n + "-")]
        if len(fs) < 5:
            verdicts.append((f"2. in-domain {n}: 5 folds dumped", False))
            continue
        st, wk = np.concatenate([f["strong"] for f in fs]), np.concatenate([f["weak"] for f in fs])
        a = {c: float(apgr(routing_curve(np.concatenate([score(f, c) for f in fs]), st, wk))) for c in (base, cand)}
        print(f"in-domain {n} (5-fold CV, `transfer`): {base} {a[base]:.3f}, {cand} {a[cand]:.3f} "
              f"({a[cand] - a[base]:+.3f})")
        verdicts.append((f"2. in-domain {n}: {cand} - {base} >= -0.01", a[cand] - a[base] >= -0.01))
    return verdicts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", default="transfer-lsa")
    ap.add_argument("--proxies", default="category,group")
    ap.add_argument("--emb-cache", type=Path, default=None)
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--against", default="", help="a spec of --routers: report every router's paired lead over it")
    ap.add_argument("--save-scores", type=Path, default=None, help="a directory for every fold's scores (.npy)")
    ap.add_argument("--parts", default="", help="only these folds, comma-separated")
    args = ap.parse_args()
    cache = EmbeddingCache(args.emb_cache)
    mmlu = load_benchmark("mmlu")
    for parts in (CATEGORIES, GROUPS):
        assert sorted(s for c in parts.values() for s in c) == sorted(set(mmlu.subjects)), "57 subjects, once each"
    mmlu = mmlu.without_subjects(["high_school_mathematics"], name="mmlu")
    rest = [unit_scale(load_benchmark(n)) for n in ("gsm8k", "mt-bench")]
    subj = np.array(mmlu.subjects)
    specs = ["random", *[s for s in args.routers.split(",") if s]]
    lobo = {"gsm8k": load_benchmark("gsm8k"), "mt-bench": load_benchmark("mt-bench")}
    for proxy in [p for p in args.proxies.split(",") if p]:
        parts = {"category": CATEGORIES, "group": GROUPS, "subjfold": subject_folds(list(subj)),
                 "p4": {**subject_folds(list(subj), 8, P4_SEED), **{n: () for n in lobo}}}[proxy]
        if args.parts:
            parts = {k: v for k, v in parts.items() if k in args.parts.split(",")}
        rows: dict[str, dict[str, tuple[float, float, float, str]]] = {}
        kept: dict[str, dict[str, np.ndarray]] = {}
        tests = {}
        for part, members in parts.items():
            inside = np.isin(subj, members)
            if part in lobo and proxy == "p4":  # as bench/routers_transfer.py's leave-one-benchmark-out folds
                test = lobo[part]
                train = concat([unit_scale(load_benchmark("mmlu")), *(unit_scale(d) for n, d in lobo.items()
                                                                      if n != part)], f"all-but-{part}")
            else:
                test = mmlu.where(inside, part)
                train = concat([unit_scale(mmlu.where(~inside, "mmlu")), *rest], f"all-but-{part}")
            tests[part] = test
            for spec in specs:
                t0 = time.time()
                saved = args.save_scores / f"{proxy}--{part}--{label(spec)}.npy" if args.save_scores else None
                if saved is not None and saved.exists():  # kept by an earlier run of the same spec (parallel runs)
                    scores = np.load(saved)
                else:
                    scores = random_scores(test, 0) if spec == "random" else build(spec, cache).fit(train).score(test)
                if saved is not None and not saved.exists():  # written whole, then renamed: parallel runs read it whole
                    saved.parent.mkdir(parents=True, exist_ok=True)
                    tmp = saved.with_suffix(f".{os.getpid()}.tmp")
                    with tmp.open("wb") as f:
                        np.save(f, scores)
                    tmp.replace(saved)
                rows.setdefault(spec, {})[part] = measure(scores, test, args.ci)
                kept.setdefault(spec, {})[part] = np.asarray(scores, dtype=float)
                print(f"<!-- {proxy}: {spec} → {part} ({len(test)} questions): {rows[spec][part][0]:.3f}, "
                      f"{time.time() - t0:.0f} s -->", flush=True)
        names = list(parts)
        print(f"\n#### Leave one MMLU {proxy} out (APGR, 95% interval; ~ not above random with confidence, ↓ below)\n")
        print("| router | " + " | ".join(f"{p} ({len(tests[p])})" for p in names)
              + " | worst lower bound | mean |")
        print("|---|" + "---|" * (len(names) + 2))
        for spec, r in rows.items():
            cells = [f"{r[p][0]:.3f} ({r[p][1]:.3f}–{r[p][2]:.3f}){r[p][3]}" for p in names]
            print(f"| {spec} | " + " | ".join(cells) + f" | {min(r[p][1] for p in names):.3f} | "
                  f"{np.mean([r[p][0] for p in names]):.3f} |", flush=True)
        if args.against and args.against in kept:
            print(f"\n#### Paired lead over `{args.against}` (APGR difference, 95% interval on the same resamples; "
                  f"the mean over the {len(names)} folds resamples each fold independently)\n")
            print("| router | " + " | ".join(names) + " | mean lead |")
            print("|---|" + "---|" * (len(names) + 1))
            for spec in kept:
                if spec == args.against:
                    continue
                leads = {p: paired_leads(kept[spec][p], kept[args.against][p], tests[p], args.ci) for p in names}
                cells = []
                for p in names:
                    v = leads[p][np.isfinite(leads[p])]
                    point = rows[spec][p][0] - rows[args.against][p][0]
                    cells.append(f"{point:+.3f} ({np.quantile(v, 0.025):+.3f}…{np.quantile(v, 0.975):+.3f})")
                mean = np.mean(np.stack([leads[p] for p in names]), axis=0)
                mean = mean[np.isfinite(mean)]
                point = np.mean([rows[spec][p][0] - rows[args.against][p][0] for p in names])
                print(f"| {spec} | " + " | ".join(cells) + f" | {point:+.3f} ({np.quantile(mean, 0.025):+.3f}…"
                      f"{np.quantile(mean, 0.975):+.3f}) |", flush=True)


if __name__ == "__main__":
    main()
