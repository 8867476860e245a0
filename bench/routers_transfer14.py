"""Issue 22, round 14 (session 33, transfer14): the strong model's failures beside the weak model's.

The default's weak-fails member (`tfidf-logit-wf`) ranks a question by P(the weak model fails). Inside one subject
that puts at the top both the questions the strong model answers and the weak one does not (a gain of 1) and the
questions both fail (no gain: disputed keys, the hardest questions): routing the latter to the strong model buys
nothing. The gain members (`tfidf-ridge-gain`, `shape-ridge-gain`) see the difference, but as one regression of a
three-valued target pooled over sources. The columns here fit a second logistic regression of "the strong model
fails" (same hashed TF-IDF, sample weights, C and intercept as the weak-fails one; `strong < 0.5` on the unit
scale) and score

- `wf-sr`: log P(weak fails) + log P(strong right) — the log-probability of a gain of 1 if the two failures were
  independent given the words: the weak-fails score discounted where the strong model is expected to fail too;
- `sr`: P(strong right) alone (a fourth member in candidate B).

Candidates: `D` the default; `A` D with `wf-sr` in place of `tfidf-logit-wf` (the registered one); `B` D plus `sr`
as a fourth member. The machinery (instrumented fit, dumps, reading, the registered rule) is round 13's
(`routers_transfer13.dump`, `scores`, `read`, `registered`), imported, not copied.

    export PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1
    nice -n 5 .venv/bin/python bench/routers_transfer14.py dump --proxy p8 --out /tmp/transfer14      # spent: preview
    nice -n 5 .venv/bin/python bench/routers_transfer14.py read --proxy p8 --out /tmp/transfer14
    nice -n 5 .venv/bin/python bench/routers_transfer14.py dump --proxy p9 --out /tmp/transfer14      # fresh
    nice -n 5 .venv/bin/python bench/routers_transfer14.py registered --out /tmp/transfer14

Proxies: `lobo`, `p6`/`p7`/`p8` (spent), `p9` (this round's fresh split, seed P9_SEED), `indomain`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import routers_transfer13 as r13
from routers_transfer10 import proxy_parts
from routers_transfer12 import P6_SEED, P7_SEED

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.transfer import (
    MEMBERS,
    TransferRouter,
    _sigmoid,
    _unit_outcomes,
    _weak_only,
    _weigh,
    strong_fails_logit,
)

P9_SEED = 20331206  # a seed no split used: P3 2026, P4 20281206, …, P7 20311206, P8 20321206
EXTRA = ("wf-sr", "sr")
COLUMNS = (*MEMBERS, *EXTRA)
CANDIDATES = {"D": MEMBERS, "A": ("wf-sr", *MEMBERS[1:]), "B": (*MEMBERS, "sr")}
REGISTERED = "A"  # the candidate of the registered rule (bench/RESULTS.md, "Transfer round 14")


class Instrumented14(r13.Instrumented13):
    """`transfer-lsa` (MEMBERS) with the strong-fails columns fitted and scored beside them."""

    KNOWN = (*TransferRouter.KNOWN, *EXTRA)
    extra = ()  # round 13's columns: none

    def _fit_members(self, data: OutcomeDataset, counts: Any, vec: np.ndarray, shape: np.ndarray,
                     rows: np.ndarray) -> dict[str, Any]:
        fit = super()._fit_members(data, counts, vec, shape, rows)
        sub, _, w = self._weighted_rows(data, rows)
        strong, _ = _unit_outcomes(sub)
        fit["strong-fails"] = strong_fails_logit(_weigh(counts[rows], fit["idf"]), strong, w)
        return fit

    def _member_scores(self, fit: dict[str, Any], counts: Any, vec: np.ndarray, shape: np.ndarray,
                       prompts: Any) -> np.ndarray:
        s = super()._member_scores(fit, counts, vec, shape, prompts)  # MEMBERS' columns (no round-13 extra)
        x = _weigh(counts, fit["idf"])
        ws, bs = fit["strong-fails"]
        strong_fails = _sigmoid(np.asarray(x @ ws, dtype=float) + bs)
        return np.c_[s, _weak_only(s[:, MEMBERS.index("tfidf-logit-wf")], strong_fails), 1.0 - strong_fails]


def parts(proxy: str) -> list[tuple[str, OutcomeDataset, OutcomeDataset]]:
    if proxy in ("lobo", "p6", "p7", "p8", "p9"):
        return proxy_parts(proxy, {"p6": P6_SEED, "p7": P7_SEED, "p8": r13.P8_SEED, "p9": P9_SEED})[0]
    return r13.parts(proxy)


def main() -> None:
    args = r13.arguments(14, 9, ",".join(CANDIDATES)).parse_args()
    if args.what == "dump":
        r13.dump(args, Instrumented14, COLUMNS, CANDIDATES, parts)
    elif args.what == "read":
        r13.read(args, CANDIDATES, fresh="p9")
    else:
        r13.registered(args, REGISTERED, CANDIDATES, fresh="p9")


if __name__ == "__main__":
    main()
