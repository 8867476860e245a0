"""Issue 22, round 15 (session 33, transfer15): where the held-out MMLU subjects lose against in-domain — the
ranking within a subject or the placement of whole subjects against each other — and which member loses it.

Spent data only (round 14's dumps of P8 / P9 and of the in-domain 5-fold CV on MMLU; `routers_transfer14.py dump`).
For each P-fold and a score (the default's blend, or one member's rank alone), with HO the held-out scores and ID the
in-domain out-of-fold scores of the same subjects' questions:

- `HO`, `ID`: the fold's APGR with the held-out / in-domain scores;
- `HO flat`: HO's within-subject percentiles only (every subject placed alike: no between-subject placement);
- `HO + oracle place`: HO's within-subject percentiles plus each subject's true mean gain (a large weight: the
  subjects ordered by their true gain, HO's order inside);
- `HO shuffled`: HO with scores shuffled within subjects (HO's placement, no within-subject ranking);
- `ID within, HO place`: each subject's HO score distribution, given to its questions in ID's within-subject order;
- `HO within, ID place`: the reverse.

The gap ID − HO splits into (ID within, HO place − HO) (the within-subject part) and (HO within, ID place − HO) (the
placement part).

    PYTHONPATH=$PWD/src:$PWD/bench nice -n 5 .venv/bin/python bench/routers_transfer15_attr.py --out /tmp/transfer15
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import routers_transfer13 as r13
import routers_transfer14 as r14
from routers_transfer11 import load

from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers.transfer import _POINTS, _rank

Dump = dict[str, np.ndarray]


def column(f: Dump, what: str) -> np.ndarray:
    """The default's blend (`A` of round 14, options member included), or one member's rank alone (`q`: options)."""
    if what == "blend":
        return r13.scores(f, "A", True, r14.CANDIDATES)
    if what == "q":
        return np.asarray(f["q"], float)
    j = [str(x) for x in f["columns"]].index(what)
    return _rank(f["s"][:, j], f["grid"][j], _POINTS) + 1e-3 * (f["s"][:, j] - f["centre"][j]) / f["scale"][j]


def within_pct(s: np.ndarray, subj: np.ndarray) -> np.ndarray:
    out = np.empty(len(s))
    for name in np.unique(subj):
        m = np.flatnonzero(subj == name)
        out[m] = (np.argsort(np.argsort(s[m], kind="stable"), kind="stable") + 0.5) / len(m)
    return out


def mapped(p: np.ndarray, subj: np.ndarray, donor: np.ndarray, donor_subj: np.ndarray) -> np.ndarray:
    """Each subject's questions at within-subject percentile p get the donor's score quantile p of that subject."""
    out = np.empty(len(p))
    for name in np.unique(subj):
        m = subj == name
        out[m] = np.quantile(donor[donor_subj == name], p[m])
    return out


def ap(s: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> float:
    return float(apgr(routing_curve(s, strong, weak)))


def attribute(fold: Dump, ind: list[Dump], what: str, rng: np.random.Generator) -> dict[str, float]:
    subj, strong, weak = fold["subjects"], fold["strong"], fold["weak"]
    ho = column(fold, what)
    keep = [np.isin(f["subjects"], np.unique(subj)) for f in ind]
    isub = np.concatenate([f["subjects"][k] for f, k in zip(ind, keep, strict=True)])
    istrong = np.concatenate([f["strong"][k] for f, k in zip(ind, keep, strict=True)])
    iweak = np.concatenate([f["weak"][k] for f, k in zip(ind, keep, strict=True)])
    ids = np.concatenate([column(f, what)[k] for f, k in zip(ind, keep, strict=True)])
    gain = {n: float((strong[subj == n] - weak[subj == n]).mean()) for n in np.unique(subj)}
    p_ho, p_id = within_pct(ho, subj), within_pct(ids, isub)
    shuffled = ho.copy()
    for n in np.unique(subj):
        m = np.flatnonzero(subj == n)
        shuffled[m] = ho[rng.permutation(m)]
    return {
        "HO": ap(ho, strong, weak),
        "ID": ap(ids, istrong, iweak),
        "HO flat": ap(p_ho, strong, weak),
        "HO + oracle place": ap(p_ho + 100 * np.array([gain[n] for n in subj]), strong, weak),
        "HO shuffled": ap(shuffled, strong, weak),
        "ID within, HO place": ap(mapped(p_id, isub, ho, subj), istrong, iweak),
        "HO within, ID place": ap(mapped(p_ho, subj, ids, isub), strong, weak),
    }


def main() -> None:
    ap_ = argparse.ArgumentParser()
    ap_.add_argument("--out", type=Path, default=Path("/tmp/transfer15"))
    ap_.add_argument("--proxies", default="p8,p9")
    ap_.add_argument("--what", default="blend,wf-sr,tfidf-ridge-gain,shape-ridge-gain,q")
    args = ap_.parse_args()
    ind = [f for k, f in sorted(load(args, "indomain").items()) if k.startswith("mmlu-")]
    rng = np.random.default_rng(0)
    for what in args.what.split(","):
        rows = []
        for proxy in args.proxies.split(","):
            for _, fold in sorted(load(args, proxy).items()):
                rows.append(attribute(fold, ind, what, rng))
        keys = list(rows[0])
        mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
        print(f"\n{what} ({len(rows)} folds of {args.proxies}): mean APGR")
        print(" | ".join(f"{k} {mean[k]:.3f}" for k in keys))
        print(f"gap ID − HO {mean['ID'] - mean['HO']:+.3f}; within part {mean['ID within, HO place'] - mean['HO']:+.3f}"
              f"; placement part {mean['HO within, ID place'] - mean['HO']:+.3f}; "
              f"flat − HO {mean['HO flat'] - mean['HO']:+.3f}; shuffled − HO {mean['HO shuffled'] - mean['HO']:+.3f}")


if __name__ == "__main__":
    main()
