"""A router that adds the geometry of a multiple-choice question's options to another router (issue 22).

A weaker model fails where a distractor says nearly what the key says, in any subject; options that say the same
thing in other words are close in a sentence-embedding space. Three counts per question from the options' unit
vectors (`option_cos_mean`, `option_cos_nearest`: the closest other option, `option_cos_spread`) feed a ridge of the
gain, fitted on questions whose options are words; its score (a quantile of its training fits) is blended into the
base router's: (1 − w) · base + w · quantile. Numbers sit close in the embedding space whatever the question and
their closeness says nothing of the gain, so a question whose options are mostly numbers or formulas
(choices.py's numeric share ≥ 0.5), or that has no options, gets the neutral 0.5. The member is switched off
(w = 0) when its leave-subject-out lead over random inside the training data is not above 0. Registered and
measured as O2 in bench/RESULTS.md (issue 22, session 26, transfer7). The options' vectors come either from a full
MiniLM pass per request (`transfer-lsa-options-minilm`, transfer7's: 21–31 ms of CPU per decision) or, by default
(`transfer-lsa-options`, session 27, transfer8), from static token vectors distilled from the same model
(static_tokens.py: a tokenizer and a table look-up, no transformer on the request path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.base import Router, register_kind, remember_quantiles
from tierwise.routers.choices import CHOICE_NAMES, choice_features, parse_choices

NAMES = ("option_cos_mean", "option_cos_nearest", "option_cos_spread")
WEIGHT = 0.25  # a fourth member beside transfer-lsa's three, at an equal share (as registered)
ALPHA = 10.0
SUBJECT_POWER = 0.5
MAX_OPTIONS = 10
_NUMERIC = CHOICE_NAMES.index("numeric_option_share")


def verbal_options(text: str) -> list[str]:
    """The options of a multiple-choice prompt whose options are mostly words; [] otherwise."""
    _, opts = parse_choices(text)
    if len(opts) < 2 or choice_features(text)[_NUMERIC] >= 0.5:
        return []
    return opts[:MAX_OPTIONS]


def geometry(vecs: np.ndarray) -> np.ndarray:
    """The three counts for one question's unit option vectors (at least two)."""
    sim = vecs @ vecs.T
    pair = sim[np.triu_indices(len(vecs), 1)]
    np.fill_diagonal(sim, -np.inf)
    return np.array([pair.mean(), sim.max(axis=1).mean(), pair.std()])


class OptionGeometryRouter:
    IN_SAMPLE_CALIBRATION = True

    def __init__(self, base: Router, vectors: Any, weight: float = WEIGHT) -> None:
        self.kind = "options"
        self.base, self.vectors, self.weight = base, vectors, float(weight)
        self.used = 0.0  # the weight in force: `weight`, or 0 when the member led nothing in training
        self.coef, self.mu, self.sd = np.zeros(len(NAMES) + 1), np.zeros(len(NAMES)), np.ones(len(NAMES))
        self.grid = np.array([0.0])
        self.train_quantiles: np.ndarray | None = None
        self.bank: Any = None  # the training bank (routers/bank.py) of a `transfer` with static token vectors

    def _counts(self, prompts: Sequence[str], cached: bool = True) -> tuple[np.ndarray, np.ndarray]:
        opts = [verbal_options(p) for p in prompts]
        verbal = np.array([bool(o) for o in opts])
        flat = list(dict.fromkeys(o for os_ in opts for o in os_))
        x = np.zeros((len(prompts), len(NAMES)))
        if flat:
            # a request's options bypass the training cache: it would grow with every option the traffic sends
            encode = self.vectors.encode if cached or not hasattr(self.vectors, "embedder") else \
                self.vectors.embedder.encode
            vec = np.asarray(encode(flat), dtype=float)
            at = {o: i for i, o in enumerate(flat)}
            for i, os_ in enumerate(opts):
                if os_:
                    x[i] = geometry(vec[[at[o] for o in os_]])
        return x, verbal

    @staticmethod
    def _ridge(x: np.ndarray, gain: np.ndarray, subjects: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.linear_model import Ridge

        from tierwise.routers.transfer import subject_factors

        w = subject_factors(np.zeros(len(x), dtype="<U1"), list(subjects), SUBJECT_POWER)
        mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
        r = Ridge(alpha=ALPHA).fit((x - mu) / sd, gain, sample_weight=w)
        return np.r_[r.coef_, r.intercept_], mu, sd

    @staticmethod
    def _predict(fit: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
        coef, mu, sd = fit
        return np.asarray(((x - mu) / sd) @ coef[:-1] + coef[-1], dtype=float)

    def _quantile(self, pred: np.ndarray, grid: np.ndarray) -> np.ndarray:
        return np.searchsorted(grid, pred, side="right") / len(grid)

    def fit(self, data: OutcomeDataset) -> OptionGeometryRouter:
        from tierwise.evaluation.metrics import apgr, routing_curve
        from tierwise.routers.transfer import _unit_outcomes, sources, subject_folds

        self.base.fit(data)
        # static token vectors weigh tokens by their frequency among the training options (no-op for MiniLM's)
        self.vectors.fit([o for p in data.prompts for o in verbal_options(p)])
        x, verbal = self._counts(data.prompts)
        strong, weak = _unit_outcomes(data)
        gain, subj, src = strong - weak, np.array(data.subjects), sources(data)
        # the member learns and is judged inside the sources that hold multiple-choice questions
        rows = np.flatnonzero(np.isin(src, np.unique(src[verbal])))
        self.used = 0.0
        folds = subject_folds(src[rows], list(subj[rows]), 3, 0) if len(rows) else None
        if folds is not None and verbal[rows].sum() >= 2 * len(NAMES):
            oof = np.full(len(rows), 0.5)
            for te in folds:
                tr = np.setdiff1d(np.arange(len(rows)), te)
                fr, tv = rows[tr][verbal[rows[tr]]], te[verbal[rows[te]]]
                if len(fr) < 2 * len(NAMES):
                    continue
                f = self._ridge(x[fr], gain[fr], subj[fr])
                oof[tv] = self._quantile(self._predict(f, x[rows[tv]]), np.sort(self._predict(f, x[fr])))
            if apgr(routing_curve(oof, strong[rows], weak[rows])) > 0.5:
                self.used = self.weight
            fr = rows[verbal[rows]]
            self.coef, self.mu, self.sd = self._ridge(x[fr], gain[fr], subj[fr])
            self.grid = np.sort(self._predict((self.coef, self.mu, self.sd), x[fr]))
        self.bank = None
        if getattr(self.base, "kind", None) == "transfer" and getattr(self.vectors, "kind", None) == "static":
            from tierwise.routers.bank import fit_bank

            self.bank = fit_bank(self.vectors.encode, data)
        remember_quantiles(self, self.score(data))
        return self

    def _member(self, x: np.ndarray, verbal: np.ndarray) -> np.ndarray:
        q = np.full(len(x), 0.5)
        if verbal.any():
            q[verbal] = self._quantile(self._predict((self.coef, self.mu, self.sd), x[verbal]), self.grid)
        return q

    def score(self, data: OutcomeDataset) -> np.ndarray:
        base = np.asarray(self.base.score(data), dtype=float)
        if self.used == 0:
            return base
        return (1 - self.used) * base + self.used * self._member(*self._counts(data.prompts))

    def score_text(self, prompt: str, answer: str | None = None) -> float:
        base = float(self.base.score_text(prompt, answer))
        if self.used == 0:
            return base
        x, verbal = self._counts([prompt], cached=False)
        return (1 - self.used) * base + self.used * float(self._member(x, verbal)[0])

    def meta(self) -> dict[str, Any]:
        out = {"weight": self.weight, "used": self.used, "vectors": self.vectors.meta(),
               "base": {"kind": self.base.kind, **self.base.meta()}}
        if self.bank is not None:
            out["bank"] = self.bank.meta()
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        own = {"coef": self.coef, "mu": self.mu, "sd": self.sd, "grid": self.grid}
        own.update({f"vectors/{k}": v for k, v in self.vectors.arrays().items()})
        if self.bank is not None:
            own.update({f"bank/{k}": v for k, v in self.bank.arrays().items()})
        return {**own, **{f"base/{k}": v for k, v in self.base.arrays().items()}}

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> OptionGeometryRouter:
        from tierwise.routers.base import ROUTER_KINDS
        from tierwise.routers.dense import EmbeddingVectors
        from tierwise.routers.static_tokens import StaticTokenVectors

        b = dict(meta["base"])
        base = ROUTER_KINDS[str(b.pop("kind"))](b, {k[5:]: v for k, v in arrays.items() if k.startswith("base/")})
        base.kind = str(meta["base"]["kind"])
        vm = meta["vectors"]
        vectors: Any = StaticTokenVectors.restore(vm, {k[8:]: v for k, v in arrays.items() if k.startswith(
            "vectors/")}) if vm.get("kind") == "static" else EmbeddingVectors(str(vm.get("model", "all-MiniLM-L6-v2")))
        r = cls(base, vectors, float(meta["weight"]))
        r.used = float(meta["used"])
        r.coef, r.mu, r.sd, r.grid = (np.asarray(arrays[k], dtype=float) for k in ("coef", "mu", "sd", "grid"))
        if "bank" in meta:  # saved since session 37 (transfer23); a router without one places without the bank term
            from tierwise.routers.bank import NeighbourBank

            if not isinstance(vectors, StaticTokenVectors) or vectors.table is None:
                raise ValueError("bank: saved without static token vectors to read requests by")
            r.bank = NeighbourBank.restore(meta["bank"], {k[5:]: v for k, v in arrays.items()
                                                          if k.startswith("bank/")}, int(vectors.table.shape[1]))
        return r


def options(base: Router, cache: Any = None, weight: float = WEIGHT, vectors: str = "static") -> OptionGeometryRouter:
    """`vectors`: "static" (distilled token vectors, static_tokens.py) or "minilm" (a full pass per request)."""
    from tierwise.routers.dense import EmbeddingVectors
    from tierwise.routers.static_tokens import StaticTokenVectors

    if vectors == "static":
        return OptionGeometryRouter(base, StaticTokenVectors(), weight)
    if vectors == "minilm":
        return OptionGeometryRouter(base, EmbeddingVectors(cache=cache if cache is not None else {}), weight)
    raise ValueError(f"unknown option vectors {vectors!r}; choose static or minilm")


register_kind("options", OptionGeometryRouter.restore)
