"""Issue 22, session 26 (transfer7): the geometry of a multiple-choice question's options in a sentence-embedding
space, as a router member meant to hold in any domain, measured on the unseen-domain proxy P2 (leave one MMLU
subject group out) against the default `transfer-lsa` (C3).

Why it might transfer: a weaker model fails where the options are close to one another (a distractor that says
nearly what the key says), whatever the subject; the strong model separates them. Session 17's word overlap of the
options (routers/choices.py `option_overlap`) is a lexical stand-in and lifted the quantitative groups; options
that say the same thing in different words are close in MiniLM's space but share no word. The counts read no
word of the subject and no option count (a mean, a mean of nearest neighbours, a spread), so 4 or 10 options keep
one scale.

    # 1. embed every MMLU option once (all-MiniLM-L6-v2, the bundled copy), write the three counts per question
    nice -n 5 .venv/bin/python bench/routers_option_geometry.py embed --out /tmp/transfer7
    # 2. C3's scores per P2 group: bench/routers_transfer_proxies.py --proxies group --save-scores DIR
    # 3. the candidate on those scores, paired against C3 (the pre-registered rule in bench/RESULTS.md)
    nice -n 5 .venv/bin/python bench/routers_option_geometry.py measure --out /tmp/transfer7 --scores DIR --ci 300
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from routers_transfer_domains import CATEGORIES  # bench/ is on sys.path
from routers_transfer_proxies import GROUPS, label, measure, paired_leads

from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers.choices import parse_choices
from tierwise.routers.transfer import SHAPE_ALPHA, SUBJECT_POWER, subject_factors, subject_folds

NAMES = ("option_cos_mean", "option_cos_nearest", "option_cos_spread")
WEIGHT = 0.25  # a fourth member beside C3's three, at an equal share (registered before any figure)


def geometry(vecs: np.ndarray) -> np.ndarray:
    """The three counts for one question's unit option vectors (≥ 2 options)."""
    sim = vecs @ vecs.T
    iu = np.triu_indices(len(vecs), 1)
    pair = sim[iu]
    np.fill_diagonal(sim, -np.inf)
    return np.array([pair.mean(), sim.max(axis=1).mean(), pair.std()])


def embed(out: Path) -> None:
    from tierwise.routers.features import Embedder

    mmlu = load_benchmark("mmlu").without_subjects(["high_school_mathematics"], name="mmlu")
    opts = [parse_choices(p)[1] for p in mmlu.prompts]
    uniq = sorted({o for os_ in opts for o in os_})
    print(f"{len(mmlu)} questions, {sum(map(len, opts))} options, {len(uniq)} distinct", flush=True)
    vec = Embedder().encode(uniq, batch_size=128)
    at = {o: i for i, o in enumerate(uniq)}
    feats = np.zeros((len(mmlu), len(NAMES)))
    for i, os_ in enumerate(opts):
        if len(os_) >= 2:
            feats[i] = geometry(vec[[at[o] for o in os_]])
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "option_geometry.npy", feats)
    print("written", out / "option_geometry.npy", flush=True)


def _ranks(train_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each score's quantile among the training fits (the member's scale, as C3 ranks its members)."""
    srt = np.sort(train_scores)
    return np.searchsorted(srt, scores, side="right") / len(srt)


def _lead(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> float:
    from tierwise.evaluation.metrics import apgr, routing_curve

    return apgr(routing_curve(scores, strong, weak)) - 0.5


def member(x: np.ndarray, gain: np.ndarray, subjects: np.ndarray, rows: np.ndarray):
    """Ridge of the gain on the standardised counts, subjects balanced at √size (as C3's shape member)."""
    from sklearn.linear_model import Ridge

    w = subject_factors(np.zeros(len(rows), dtype="<U1"), list(subjects[rows]), SUBJECT_POWER)
    mu, sd = x[rows].mean(axis=0), x[rows].std(axis=0) + 1e-9
    r = Ridge(alpha=SHAPE_ALPHA).fit((x[rows] - mu) / sd, gain[rows], sample_weight=w)
    return lambda z: r.predict((z - mu) / sd)


def candidate_verbal(x, verbal, strong, weak, subjects, train, test, c3_test):
    """O2 (round 2): the member fitted on questions with verbal options only; a question with numeric options
    (choices.py `numeric_option_share` ≥ 0.5) or none gets the member's neutral quantile 0.5 (numbers sit close
    in MiniLM's space whatever the question: their cosine says nothing of the gain)."""
    gain = strong - weak
    folds = subject_folds(np.zeros(len(train), dtype="<U1"), list(subjects[train]), 3, 0)
    oof = np.full(len(train), 0.5)
    for te in folds:
        tr = np.setdiff1d(np.arange(len(train)), te)
        fit_rows, te_v = train[tr][verbal[train[tr]]], te[verbal[train[te]]]
        f = member(x, gain, subjects, fit_rows)
        oof[te_v] = _ranks(f(x[fit_rows]), f(x[train[te_v]]))
    lead = _lead(oof, strong[train], weak[train])
    rows = train[verbal[train]]
    f = member(x, gain, subjects, rows)
    q = np.full(len(test), 0.5)
    q[verbal[test]] = _ranks(f(x[rows]), f(x[test[verbal[test]]]))
    w = WEIGHT if lead > 0 else 0.0
    return (1 - w) * c3_test + w * q, lead


def candidate(x, strong, weak, subjects, train, test, c3_test):
    """C3's score blended with the option-geometry member's training-quantile, weight WEIGHT; the member is off
    (weight 0) when its leave-subject-out lead over random inside the training rows is not above 0."""
    gain = strong - weak
    folds = subject_folds(np.zeros(len(train), dtype="<U1"), list(subjects[train]), 3, 0)
    oof = np.zeros(len(train))
    for te in folds:
        tr = np.setdiff1d(np.arange(len(train)), te)
        oof[te] = member(x, gain, subjects, train[tr])(x[train[te]])
    lead = _lead(oof, strong[train], weak[train])
    f = member(x, gain, subjects, train)
    w = WEIGHT if lead > 0 else 0.0
    return (1 - w) * c3_test + w * _ranks(f(x[train]), f(x[test])), lead


def run_measure(out: Path, scores_dir: Path, ci: int, proxy: str, variant: str) -> None:
    from tierwise.evaluation.baselines import random_scores

    mmlu = load_benchmark("mmlu").without_subjects(["high_school_mathematics"], name="mmlu")
    x = np.load(out / "option_geometry.npy")
    from tierwise.routers.choices import CHOICE_NAMES, choice_features

    numeric = np.array([choice_features(p)[CHOICE_NAMES.index("numeric_option_share")] for p in mmlu.prompts])
    verbal = (numeric < 0.5) & np.any(x != 0, axis=1)
    subj = np.array(mmlu.subjects)
    strong, weak = np.asarray(mmlu.strong, float), np.asarray(mmlu.weak, float)
    rows = {}
    leads = {}
    parts = {"group": GROUPS, "category": CATEGORIES}[proxy]
    for part, members in parts.items():
        inside = np.isin(subj, members)
        test_ix, train_ix = np.flatnonzero(inside), np.flatnonzero(~inside)
        d = mmlu.where(inside, part)
        c3 = np.load(scores_dir / f"{proxy}--{part}--{label('transfer-lsa')}.npy").astype(float)
        if variant == "O2":
            cand, lead = candidate_verbal(x, verbal, strong, weak, subj, train_ix, test_ix, c3)
        else:
            cand, lead = candidate(x, strong, weak, subj, train_ix, test_ix, c3)
        rows[part] = {"random": measure(random_scores(d, 0), d, ci), "C3": measure(c3, d, ci),
                      variant: measure(cand, d, ci)}
        leads[part] = (paired_leads(cand, c3, d, ci), lead, d)
        print(f"<!-- {part}: member lead in training {lead:+.3f}; C3 {rows[part]['C3'][0]:.3f}, "
              f"{variant} {rows[part][variant][0]:.3f} -->", flush=True)
    names = list(parts)
    print("\n| router | " + " | ".join(f"{p} ({len(leads[p][2])})" for p in names) + " | worst lower bound | mean |")
    print("|---|" + "---|" * (len(names) + 2))
    for r in ("random", "C3", variant):
        cells = [f"{rows[p][r][0]:.3f} ({rows[p][r][1]:.3f}–{rows[p][r][2]:.3f}){rows[p][r][3]}" for p in names]
        print(f"| {r} | " + " | ".join(cells) + f" | {min(rows[p][r][1] for p in names):.3f} | "
              f"{np.mean([rows[p][r][0] for p in names]):.3f} |")
    cells = []
    for p in names:
        v = leads[p][0][np.isfinite(leads[p][0])]
        cells.append(f"{rows[p][variant][0] - rows[p]['C3'][0]:+.3f} ({np.quantile(v, 0.025):+.3f}…"
                     f"{np.quantile(v, 0.975):+.3f})")
    mean = np.mean(np.stack([leads[p][0] for p in names]), axis=0)
    mean = mean[np.isfinite(mean)]
    point = np.mean([rows[p][variant][0] - rows[p]["C3"][0] for p in names])
    print(f"| {variant} − C3, paired | " + " | ".join(cells) + f" | | {point:+.3f} ({np.quantile(mean, 0.025):+.3f}…"
          f"{np.quantile(mean, 0.975):+.3f}) |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=("embed", "measure"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/transfer7"))
    ap.add_argument("--scores", type=Path, default=Path("/tmp/transfer7/scores"))
    ap.add_argument("--ci", type=int, default=300)
    ap.add_argument("--variant", default="O", choices=("O", "O2"))
    ap.add_argument("--proxies", default="group", help="group (P2, the rule), category (P1, a check)")
    args = ap.parse_args()
    if args.step == "embed":
        embed(args.out)
    else:
        for proxy in args.proxies.split(","):
            print(f"\n#### {proxy}")
            run_measure(args.out, args.scores, args.ci, proxy, args.variant)


if __name__ == "__main__":
    main()
