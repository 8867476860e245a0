"""A router meant to be trained on public data and used on other traffic (issue 22, part 4).

Routers that regress the gain (strong − weak outcome) learn how each benchmark was run: on the
RouteLLM data GPT-4's MMLU answers were parsed from one token (its 3% on high-school mathematics
is a parsing artefact), GSM8K's step by step, so "the strong model adds most here" does not
travel alone. Whether the *weak* model fails is more a property of the question. By default
this router averages the ranks of three members, one per kind of evidence:
- `tfidf-logit-wf`: logistic regression of "the weak model fails" on hashed TF-IDF (since session 33 discounted by a
  second one of "the strong model fails": log P(weak fails) + log P(strong right), `STRONG`);
- `tfidf-ridge-gain`: ridge regression of the gain on the same features;
- `shape-ridge-gain`: ridge regression of the gain on standardised log-counts of domain-general
  question shape (`DEFAULT_SHAPE`: numbers and their size, digits, maths symbols, question marks,
  negations — `PLAIN_SHAPE`, no length counts, no words — and the seven counts of multiple-choice
  structure of routers/choices.py, `CHOICES`, zeros for a prompt without options; `shape=` chooses
  among `SHAPE` + `CHOICES`, `SHAPE` adding words, sentences and words per sentence);
and, on request, `knn-wf` (the similarity-weighted share of weak failures among the k nearest
training prompts, LSA or sentence-embedding space) and `trees-wf` (boosted trees of weak failure
over all prompt-shape features).
Every member learns from the queries of each data source (the part before `:` of a query's
group, e.g. the benchmark) with the gain centred within the source, so it learns what makes a
question harder *within* a benchmark rather than which benchmark is harder; a source of n
queries weighs n^(1 − `SOURCE_POWER`) in all (0.5: in proportion to √n, between pooling, which
lets the largest benchmark decide alone, and equal weights, which lets 72 MT-Bench questions
weigh as much as 14,000 MMLU ones), and inside its source a subject of n queries weighs in
proportion to √n (`SUBJECT_POWER`: no MMLU subject dominates). A member's score becomes its rank
among its out-of-fold training scores (a stored quantile grid); the out-of-fold scores come from
folds that each hold whole subjects (as an unseen domain gets them), and each member's rank weighs
its lead over random on them shrunk half-way to equal weights (`WEIGH` = "subject-oof-shrunk", the default since
session 30: in-domain leads reward what one benchmark rewards; "subject-oof": the leads alone, sessions 18–29;
"equal": the same weight for every member).
Only the ranking counts: a route's threshold is re-fitted on the traffic. This configuration won
the pre-registered comparison of bench/RESULTS.md, issue 22, sessions 17–18; routers saved before
it keep the settings they were saved with (`restore` reads them from the file).
Calibration quantiles come from out-of-fold scores, as unseen prompts get them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.base import register_kind, remember_quantiles
from tierwise.routers.choices import CHOICE_NAMES, choice_features
from tierwise.routers.dense import Vectors, make_vectors, restore_vectors
from tierwise.routers.features import SHAPE_NAMES, shape_features, shape_groups
from tierwise.routers.stack import BlendedRouter, TreeEnsemble, _counts, _idf, _sigmoid, _weigh

KNOWN = ("tfidf-logit-wf", "tfidf-ridge-gain", "shape-ridge-gain", "knn-wf", "trees-wf")
MEMBERS = ("tfidf-logit-wf", "tfidf-ridge-gain", "shape-ridge-gain")
SHAPE = ("words", "sentences", "words_per_sentence", "numbers", "distinct_numbers", "log_max_number", "digits",
         "decimals", "math_symbols", "questions", "negation")
# The shape member reads no length count: prompt length routed below random on a held-out 14-domain
# multiple-choice set (issue 22), and dropping them won the pre-registered MMLU-category proxy (bench/RESULTS.md,
# issue 22, session 15, round 2). Routers saved before read all of SHAPE.
PLAIN_SHAPE = tuple(k for k in SHAPE if k not in ("words", "sentences", "words_per_sentence"))
# Multiple-choice structure (routers/choices.py): shares and yes/no, the same scale for 4 or 10 options.
CHOICES = CHOICE_NAMES
# The default since session 18 (the pre-registered rule of session 17): PLAIN_SHAPE + CHOICES, subjects balanced
# at √size, members weighed by their leave-subject-out lead over random. Before: PLAIN_SHAPE, 0.0, "equal".
DEFAULT_SHAPE = PLAIN_SHAPE + CHOICES
SUBJECT_POWER = 0.5
# "subject-oof-shrunk" (session 30, transfer11): the leave-subject-out weights (normalised) shrunk half-way to equal,
# since weights fitted in-domain reward what one benchmark rewards (trained on MMLU + GSM8K, the weak-fails member got
# 0.027 and alone reached 0.812 on MT-Bench). Registered and measured in bench/RESULTS.md, "Transfer round 11".
WEIGHINGS = ("equal", "subject-oof", "subject-oof-shrunk")
SHRINK = 0.5  # the share of equal weights in "subject-oof-shrunk" (half-way, fixed before any figure)
WEIGH = "subject-oof-shrunk"  # the default since session 30 (round 11's registered rule); "subject-oof" before
# "source" (session 31, transfer12): the weak-fails logistic learns with a free intercept per data source (barely
# penalised, dropped when scoring), so its words learn which question of a benchmark the weak model fails, not which
# benchmark it fails more; "subject": one per subject within its source. "none": one intercept for all.
OFFSETS = ("none", "source", "subject")
OFFSET = "none"
OFFSET_SCALE = 30.0  # the offset columns' value: an intercept costs 1/30² of a word's penalty
# "shared-subject" (session 32, transfer13): the weak-fails logistic sees each row's words twice, in shared columns
# and in columns of the row's subject within its source, under one penalty, and scores with the shared weights only:
# a word that marks hard questions in one subject alone is split between the two, one that does so everywhere stays
# whole ("shared-source": the groups are the data sources). "pooled": one weight per word.
WORDINGS = ("pooled", "shared-subject", "shared-source")
WORDS = "pooled"
GROUP_SCALE = 1.0  # the group copies' value: the same penalty as the shared column
# "discount" (session 33, transfer14): a second logistic regression on the same words learns "the strong model fails",
# and the weak-fails member scores log P(weak fails) + log P(strong right), so a question both models fail (no gain
# from routing it) ranks below one only the weak model fails. The default since session 33 (round 14's registered
# rule, bench/RESULTS.md "Transfer round 14"); "ignored": P(weak fails) alone, as routers saved before keep.
STRONGS = ("ignored", "discount")
STRONG = "discount"
_TINY = 1e-9  # the floor of a probability under the log
MIN_WEIGHING_SOURCE = 100  # a source smaller than this does not vote on the members' weights
SOURCE_POWER = 0.5
RANK_POINTS = 257
_POINTS = np.linspace(0.0, 1.0, RANK_POINTS)
K = 50
TEMPERATURE = 0.05
LOGIT_C = 1.0
RIDGE_ALPHA = 30.0
SHAPE_ALPHA = 10.0


def _unit_outcomes(data: OutcomeDataset) -> tuple[np.ndarray, np.ndarray]:
    y = np.stack([data.strong, data.weak])
    lo, hi = float(y.min()), float(y.max())
    y = (y - lo) / (hi - lo) if hi > lo else np.zeros_like(y)
    return y[0], y[1]


def sources(data: OutcomeDataset) -> np.ndarray:
    """The data source of each query: the part of its group before the first `:` (one source if none)."""
    return np.array([g.split(":", 1)[0] if ":" in g else "" for g in data.groups])


def source_weights(src: np.ndarray, power: float = SOURCE_POWER) -> np.ndarray:
    """Per-query weights, mean 1, under which a source of n queries weighs n^(1 − power) in all."""
    _, inv, counts = np.unique(src, return_inverse=True, return_counts=True)
    w = counts.astype(float)[inv] ** -power
    return np.asarray(w * len(w) / w.sum(), dtype=float)


def balanced_weights(src: np.ndarray) -> np.ndarray:
    """Every source counts the same in all."""
    return source_weights(src, 1.0)


def subject_factors(src: np.ndarray, subjects: Sequence[str], power: float) -> np.ndarray:
    """Per-query factors, mean 1 within each source, under which a subject of n queries weighs n^(1 − power)
    inside its source (0: every query the same; 1: every subject the same), so no subject dominates."""
    out = np.ones(len(src))
    if power == 0 or len(src) == 0:
        return out
    keys = np.array([f"{a}\x00{b}" for a, b in zip(src, subjects, strict=True)])
    _, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
    raw = counts.astype(float)[inv] ** -power
    for name in np.unique(src):
        m = src == name
        out[m] = raw[m] * m.sum() / raw[m].sum()
    return out


def subject_folds(src: np.ndarray, subjects: Sequence[str], k: int, seed: int,
                  prompts: Sequence[str] | None = None) -> list[np.ndarray] | None:
    """k folds that each hold whole subjects (a source without subjects is one subject); None if too few.

    `prompts`: a query whose prompt (`cv.same_prompt`) an earlier query holds goes to that query's fold, so a
    prompt repeated under two subjects is never trained on and scored (as `cv.group_folds(merge_prompts=True)`
    does for the inner folds); when that would leave a fold empty, the subjects' folds alone."""
    from tierwise.evaluation.cv import same_prompt

    keys = [f"{a}\x00{b}" for a, b in zip(src, subjects, strict=True)]
    names = sorted(set(keys))
    if len(names) < k:
        return None
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of = {names[g]: i % k for i, g in enumerate(order)}
    assign = np.array([fold_of[x] for x in keys])
    if prompts is not None:
        first: dict[str, int] = {}
        merged = np.array([first.setdefault(same_prompt(p), int(f)) for p, f in zip(prompts, assign, strict=True)])
        if len(set(merged.tolist())) == k:
            assign = merged
    return [np.flatnonzero(assign == f) for f in range(k)]


def oof_weights(oof: np.ndarray, data: OutcomeDataset, power: float) -> np.ndarray:
    """Member weights from leave-subject-out scores inside the training data: each member's APGR within each
    source of at least MIN_WEIGHING_SOURCE queries, averaged with the sources weighted as in training; a
    member weighs its lead over random (0.5), none below; all equal when no member leads."""
    from tierwise.evaluation.metrics import apgr, routing_curve

    src = sources(data)
    strong, weak = _unit_outcomes(data)
    names = [n for n in np.unique(src) if (src == n).sum() >= MIN_WEIGHING_SOURCE]
    lead = np.zeros(oof.shape[1])
    votes = [(n, float((src == n).sum()) ** (1 - power)) for n in names]
    votes = [(n, v) for n, v in votes if strong[src == n].mean() != weak[src == n].mean()]
    if not votes:
        return np.ones(oof.shape[1])
    total = sum(v for _, v in votes)
    for j in range(oof.shape[1]):
        m = [apgr(routing_curve(oof[src == n, j], strong[src == n], weak[src == n])) for n, _ in votes]
        lead[j] = sum(v * (a - 0.5) for (_, v), a in zip(votes, m, strict=True)) / total
    w = np.maximum(lead, 0.0)
    return w if w.sum() > 0 else np.ones(oof.shape[1])


def centred_within(y: np.ndarray, src: np.ndarray) -> np.ndarray:
    out = np.asarray(y, dtype=float).copy()
    for name in np.unique(src):
        out[src == name] -= out[src == name].mean()
    return out


def _shape_logs(prompts: Sequence[str], names: Sequence[str] = SHAPE) -> np.ndarray:
    if not prompts:
        return np.zeros((0, len(names)))
    raw = np.stack([shape_features(p) for p in prompts]).astype(float)
    choice = np.stack([choice_features(p) for p in prompts]) if any(k in CHOICES for k in names) else raw
    cols = [choice[:, CHOICES.index(k)] if k in CHOICES else raw[:, SHAPE_NAMES.index(k)] for k in names]
    return np.log1p(np.maximum(np.stack(cols, axis=1), 0.0))


class TransferRouter(BlendedRouter):
    kind = "transfer"
    KNOWN = KNOWN
    N_INTERCEPTS = 2  # logit, ridge

    def __init__(self, vectors: Vectors, *, members: Sequence[str] = MEMBERS, n_buckets: int = 1 << 18,
                 source_power: float = SOURCE_POWER, shape: Sequence[str] = DEFAULT_SHAPE,
                 subject_power: float = SUBJECT_POWER, weigh: str = WEIGH, offsets: str = OFFSET,
                 words: str = WORDS, strong: str = STRONG, seed: int = 0) -> None:
        super().__init__(vectors, members, n_buckets, seed)
        unknown = [k for k in shape if k not in SHAPE + CHOICES]
        if unknown or not shape or len(set(shape)) != len(shape):
            raise ValueError(f"shape counts must be a non-empty subset of {SHAPE + CHOICES}; got {list(shape)}")
        if weigh not in WEIGHINGS:
            raise ValueError(f"weigh must be one of {WEIGHINGS}; got {weigh!r}")
        if offsets not in OFFSETS:
            raise ValueError(f"offsets must be one of {OFFSETS}; got {offsets!r}")
        if words not in WORDINGS:
            raise ValueError(f"words must be one of {WORDINGS}; got {words!r}")
        if strong not in STRONGS:
            raise ValueError(f"strong must be one of {STRONGS}; got {strong!r}")
        if not 0.0 <= float(subject_power) <= 1.0:
            raise ValueError(f"subject_power must be in [0, 1]; got {subject_power}")
        self.source_power = float(source_power)
        self.subject_power = float(subject_power)
        self.weigh = weigh
        self.offsets = offsets
        self.words = words
        self.strong = strong
        self.shape = tuple(shape)
        # One request's shape row: only the columns read, from [shape features as float64, choice counts].
        self._groups = shape_groups(SHAPE_NAMES.index(k) for k in self.shape if k not in CHOICES)
        self._with_choices = any(k in CHOICES for k in self.shape)
        self._take = np.array([len(SHAPE_NAMES) + CHOICES.index(k) if k in CHOICES else SHAPE_NAMES.index(k)
                               for k in self.shape])
        self.logit = np.zeros(0, np.float32)
        self.strong_logit, self.strong_intercept = np.zeros(0, np.float32), 0.0
        self.ridge = np.zeros(0, np.float32)
        self.shape_coef = np.zeros(len(self.shape) + 1)  # the last entry is the intercept
        self.shape_mu, self.shape_sd = np.zeros(len(self.shape)), np.ones(len(self.shape))
        self.bank = np.zeros((0, 1), np.float32)
        self.fails = np.zeros(0, np.float32)
        self.rank_grid: np.ndarray | None = None  # members × RANK_POINTS quantiles of out-of-fold scores
        self.source_apgr: dict[str, float] = {}  # kept for routers saved before rank blending
        self._flipped_of: np.ndarray | None = None  # the rank grid `_flipped` was made from
        self._flipped = np.zeros((0, RANK_POINTS))

    # --- fitting the members on a subset ---------------------------------------------------
    def _weighted_rows(self, data: OutcomeDataset, rows: np.ndarray) -> tuple[OutcomeDataset, np.ndarray, np.ndarray]:
        """The rows `rows` of `data`, their sources, and each row's weight in a fit (its source's share by
        `source_power`, its subject's factor by `subject_power`); the benches' extra columns weigh rows the same."""
        sub = data.take(rows)
        src = sources(sub)
        return sub, src, source_weights(src, self.source_power) * subject_factors(src, sub.subjects, self.subject_power)

    def _fit_members(self, data: OutcomeDataset, counts: Any, vec: np.ndarray, shape: np.ndarray,
                     rows: np.ndarray) -> dict[str, Any]:
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression, Ridge

        sub, src, w = self._weighted_rows(data, rows)
        strong, weak = _unit_outcomes(sub)
        fails = 1.0 - weak
        gain = centred_within(strong - weak, src)
        idf = _idf(counts[rows])
        x = _weigh(counts[rows], idf)
        fit: dict[str, Any] = {"idf": idf}
        if "tfidf-logit-wf" in self.members:
            y = (weak < 0.5).astype(int)
            if y.min() == y.max():
                fit["logit"] = (np.zeros(x.shape[1], np.float32), float(np.log(np.clip(y.mean(), 1e-3, 1 - 1e-3)
                                                                              / np.clip(1 - y.mean(), 1e-3, 1))))
            elif self.offsets != "none":
                _, inv = np.unique(_group_keys(src, sub.subjects, self.offsets == "subject"), return_inverse=True)
                dummies = sparse.csr_matrix((np.full(len(rows), OFFSET_SCALE), (np.arange(len(rows)), inv)))
                m = LogisticRegression(C=LOGIT_C, max_iter=2000, fit_intercept=False).fit(
                    sparse.hstack([self._word_columns(x, src, sub.subjects), dummies]).tocsr(), y, sample_weight=w)
                fit["logit"] = (m.coef_[0][: x.shape[1]].astype(np.float32), 0.0)  # a constant ranks nothing
            else:
                m = LogisticRegression(C=LOGIT_C, max_iter=2000).fit(self._word_columns(x, src, sub.subjects), y,
                                                                     sample_weight=w)
                fit["logit"] = (m.coef_[0][: x.shape[1]].astype(np.float32), float(m.intercept_[0]))
            if self.strong == "discount":
                fit["strong_logit"] = strong_fails_logit(x, strong, w)
        if "tfidf-ridge-gain" in self.members:
            r = Ridge(alpha=RIDGE_ALPHA).fit(x, gain, sample_weight=w)
            fit["ridge"] = (np.asarray(r.coef_, np.float32), float(r.intercept_))
        if "shape-ridge-gain" in self.members:
            mu, sd = shape[rows].mean(axis=0), shape[rows].std(axis=0)
            sd = np.where(sd > 0, sd, 1.0)
            r = Ridge(alpha=SHAPE_ALPHA).fit((shape[rows] - mu) / sd, gain, sample_weight=w)
            fit["shape"] = (np.r_[r.coef_, r.intercept_], mu, sd)
        if "knn-wf" in self.members:
            fit["bank"], fit["fails"] = vec[rows].astype(np.float16).astype(np.float32), fails.astype(np.float32)
        if "trees-wf" in self.members:
            fit["trees"] = TreeEnsemble.fit(np.stack([shape_features(p) for p in sub.prompts]), fails, sample_weight=w)
        return fit

    def _word_columns(self, x: Any, src: np.ndarray, subjects: Sequence[str]) -> Any:
        """The weak-fails member's features: `x`, or under a shared `words` setting `shared_columns` of it."""
        if self.words == "pooled":
            return x
        keys = _group_keys(src, subjects, self.words == "shared-subject")
        return shared_columns(x, np.unique(keys, return_inverse=True)[1])

    def _member_scores(self, fit: dict[str, Any], counts: Any, vec: np.ndarray, shape: np.ndarray,
                       prompts: Sequence[str]) -> np.ndarray:
        x = _weigh(counts, fit["idf"])
        cols = []
        for m in self.members:
            if m == "tfidf-logit-wf":
                w, b = fit["logit"]
                p = _sigmoid(np.asarray(x @ w, dtype=float) + b)
                if self.strong == "discount":
                    ws, bs = fit["strong_logit"]
                    p = _weak_only(p, _sigmoid(np.asarray(x @ ws, dtype=float) + bs))
                cols.append(p)
            elif m == "tfidf-ridge-gain":
                w, b = fit["ridge"]
                cols.append(np.asarray(x @ w, dtype=float) + b)
            elif m == "shape-ridge-gain":
                coef, mu, sd = fit["shape"]
                cols.append(((shape - mu) / sd) @ coef[:-1] + coef[-1])
            elif m == "knn-wf":
                cols.append(_knn(vec, fit["bank"], fit["fails"]))
            else:
                cols.append(fit["trees"].predict(np.stack([shape_features(p) for p in prompts])))
        return np.stack(cols, axis=1)

    def _features(self, prompts: Sequence[str]) -> tuple[Any, np.ndarray, np.ndarray]:
        counts = _counts(self.tfidf, prompts)
        vec = self.vectors.encode(prompts).astype(np.float32) if "knn-wf" in self.members else np.zeros((len(prompts), 1))
        return counts, vec, _shape_logs(prompts, self.shape)

    def fit(self, data: OutcomeDataset) -> TransferRouter:
        from tierwise.evaluation.cv import group_folds

        n = len(data)
        if "knn-wf" in self.members:
            self._fit_vectors(data.prompts)
        counts, vec, shape = self._features(data.prompts)
        # Out-of-fold member scores: the rank grids and the calibration quantiles.
        oof = np.zeros((n, len(self.members)))
        enough = n >= 20 and len(set(data.groups)) >= 3
        folds = group_folds(data, 3, self.seed, merge_prompts=True) if enough else [np.arange(n)]
        if enough and self.weigh != "equal":  # leave whole subjects out: scores as an unseen domain gets
            folds = subject_folds(sources(data), data.subjects, 3, self.seed, data.prompts) or folds
        for te in folds:
            tr = np.setdiff1d(np.arange(n), te) if enough else te
            fit = self._fit_members(data, counts, vec, shape, tr)
            oof[te] = self._member_scores(fit, counts[te], vec[te], shape[te], [data.prompts[i] for i in te])
        self.rank_grid = np.quantile(oof, np.linspace(0.0, 1.0, RANK_POINTS), axis=0).T.copy()
        self._standardise(oof)
        self.weights = oof_weights(oof, data, self.source_power) if self.weigh != "equal" and enough else (
            np.ones(len(self.members)))
        if self.weigh == "subject-oof-shrunk":
            self.weights = (1 - SHRINK) * self.weights / self.weights.sum() + SHRINK / len(self.members)
        self._keep(self._fit_members(data, counts, vec, shape, np.arange(n)))
        remember_quantiles(self, self._combine(oof))
        return self

    def _combine(self, s: np.ndarray) -> np.ndarray:
        """Each member's score as its rank among the out-of-fold training scores (plus a thousandth of its
        standardised score, so scores beyond the training range keep their order), averaged; routers saved
        before rank blending keep their standardised, weighted mean."""
        if self.rank_grid is None:
            return super()._combine(s)
        s = np.atleast_2d(s)
        ranks = [_rank(s[:, j], self.rank_grid[j], _POINTS) + 1e-3 * (s[:, j] - self.centre[j]) / self.scale[j]
                 for j in range(s.shape[1])]
        return np.asarray(np.average(np.stack(ranks, axis=1), axis=1, weights=self.weights), dtype=float)

    def _keep(self, fit: dict[str, Any]) -> None:
        self.tfidf.idf = fit["idf"]
        if "logit" in fit:
            self.logit, self.intercepts[0] = fit["logit"]
        if "strong_logit" in fit:
            self.strong_logit, self.strong_intercept = fit["strong_logit"]
        if "ridge" in fit:
            self.ridge, self.intercepts[1] = fit["ridge"]
        if "shape" in fit:
            self.shape_coef, self.shape_mu, self.shape_sd = fit["shape"]
        if "bank" in fit:
            self.bank, self.fails = fit["bank"], fit["fails"]
        self.trees = fit.get("trees")

    def _fit_dict(self) -> dict[str, Any]:
        return {"idf": self.tfidf.idf, "logit": (self.logit, self.intercepts[0]),
                "strong_logit": (self.strong_logit, self.strong_intercept), "ridge": (self.ridge, self.intercepts[1]),
                "shape": (self.shape_coef, self.shape_mu, self.shape_sd), "bank": self.bank, "fails": self.fails,
                "trees": self.trees}

    def score(self, data: OutcomeDataset) -> np.ndarray:
        counts, vec, shape = self._features(data.prompts)
        return self._combine(self._member_scores(self._fit_dict(), counts, vec, shape, data.prompts))

    def score_text(self, prompt: str, answer: str | None = None) -> float:
        cols = []
        idx, val = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if "tfidf-logit-wf" in self.members or "tfidf-ridge-gain" in self.members:
            idx, val = self.tfidf.row(prompt)
        for m in self.members:
            if m == "tfidf-logit-wf":
                p = float(_sigmoid(np.asarray(np.dot(self.logit[idx], val) + self.intercepts[0])))
                if self.strong == "discount":
                    q = float(_sigmoid(np.asarray(np.dot(self.strong_logit[idx], val) + self.strong_intercept)))
                    p = float(_weak_only(np.asarray(p), np.asarray(q)))
                cols.append(p)
            elif m == "tfidf-ridge-gain":
                cols.append(float(np.dot(self.ridge[idx], val)) + self.intercepts[1])
            elif m == "shape-ridge-gain":
                z = (self._shape_logs_one(prompt) - self.shape_mu) / self.shape_sd
                cols.append(float(z @ self.shape_coef[:-1] + self.shape_coef[-1]))
            elif m == "knn-wf":
                v = self.vectors.encode_one(prompt).astype(np.float32)
                cols.append(float(_knn(v[None, :], self.bank, self.fails)[0]))
            else:
                assert self.trees is not None
                cols.append(float(self.trees.predict(shape_features(prompt)[None, :])[0]))
        return self._combine_one(cols) if self.rank_grid is not None else float(self._combine(np.asarray(cols)[None, :])[0])

    def _combine_one(self, cols: list[float]) -> float:
        """`_combine` of one request's member scores, the same arithmetic on floats instead of 1-element arrays."""
        assert self.rank_grid is not None
        if self._flipped_of is not self.rank_grid:  # `_rank`'s grid for the upper interpolation, per member
            self._flipped, self._flipped_of = -self.rank_grid[:, ::-1], self.rank_grid
        ranks = np.empty((1, len(cols)))
        for j, x in enumerate(cols):
            lo = np.interp(x, self.rank_grid[j], _POINTS, left=0.0, right=1.0)
            hi = 1.0 - np.interp(-x, self._flipped[j], _POINTS, left=0.0, right=1.0)
            ranks[0, j] = (lo + hi) / 2.0 + 1e-3 * (x - self.centre[j]) / self.scale[j]
        return float(np.average(ranks, axis=1, weights=self.weights)[0])

    def _shape_logs_one(self, prompt: str) -> np.ndarray:
        """`_shape_logs([prompt], self.shape)[0]`, computing only the columns it reads."""
        raw = shape_features(prompt, self._groups).astype(float)
        row = np.concatenate([raw, choice_features(prompt)])[self._take] if self._with_choices else raw[self._take]
        return np.log1p(np.maximum(row, 0.0))

    # --- persistence ----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {**self._blend_meta(), "source_power": self.source_power, "shape": list(self.shape),
                "subject_power": self.subject_power, "weigh": self.weigh, "offsets": self.offsets,
                "words": self.words, "strong": self.strong,
                "source_apgr": self.source_apgr}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {**self._blend_arrays(), "idf": self.tfidf.idf}
        if "knn-wf" not in self.members:  # the vectors are not used: nothing of theirs to save
            out = {k: v for k, v in out.items() if k not in self.vectors.arrays()}
        if self.rank_grid is not None:
            out["rank_grid"] = self.rank_grid
        if "tfidf-logit-wf" in self.members:
            out["logit"] = self.logit
            if self.strong == "discount":
                out["strong_logit"], out["strong_intercept"] = self.strong_logit, np.array([self.strong_intercept])
        if "tfidf-ridge-gain" in self.members:
            out["ridge"] = self.ridge
        if "shape-ridge-gain" in self.members:
            out["shape_coef"], out["shape_mu"], out["shape_sd"] = self.shape_coef, self.shape_mu, self.shape_sd
        if "knn-wf" in self.members:
            out["bank"], out["fails"] = self.bank.astype(np.float16), self.fails
        return out

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TransferRouter:
        members = meta["members"]
        vectors = restore_vectors(meta["vectors"], arrays) if "knn-wf" in members else make_vectors(
            meta["vectors"]["kind"])
        r = cls(vectors, members=members, n_buckets=int(meta["n_buckets"]),
                source_power=float(meta.get("source_power", 1.0)), shape=tuple(meta.get("shape", SHAPE)),
                subject_power=float(meta.get("subject_power", 0.0)), weigh=str(meta.get("weigh", "equal")),
                offsets=str(meta.get("offsets", "none")), words=str(meta.get("words", "pooled")),
                strong=str(meta.get("strong", "ignored")), seed=int(meta["seed"]))
        r._restore_blend(meta, arrays)
        r.source_apgr = {k: float(v) for k, v in meta.get("source_apgr", {}).items()}
        r.rank_grid = arrays["rank_grid"].astype(float) if "rank_grid" in arrays else None
        if "tfidf-logit-wf" in r.members:
            r.logit = arrays["logit"].astype(np.float32)
            if r.strong == "discount":
                r.strong_logit = arrays["strong_logit"].astype(np.float32)
                r.strong_intercept = float(arrays["strong_intercept"][0])
        if "tfidf-ridge-gain" in r.members:
            r.ridge = arrays["ridge"].astype(np.float32)
        if "shape-ridge-gain" in r.members:
            r.shape_coef, r.shape_mu, r.shape_sd = (arrays[k].astype(float) for k in ("shape_coef", "shape_mu",
                                                                                        "shape_sd"))
        if "knn-wf" in r.members:
            r.bank, r.fails = arrays["bank"].astype(np.float32), arrays["fails"].astype(np.float32)
        return r


def strong_fails_logit(x: Any, strong: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic regression of "the strong model fails" (`strong < 0.5` on the unit scale) with the weak-fails member's
    settings (C, sample weights, intercept); its weights and intercept."""
    from sklearn.linear_model import LogisticRegression

    y = (strong < 0.5).astype(int)
    if y.min() == y.max():
        return np.zeros(x.shape[1], np.float32), float(np.log(np.clip(y.mean(), 1e-3, 1 - 1e-3) /
                                                              np.clip(1 - y.mean(), 1e-3, 1)))
    m = LogisticRegression(C=LOGIT_C, max_iter=2000).fit(x, y, sample_weight=w)
    return m.coef_[0].astype(np.float32), float(m.intercept_[0])


def _weak_only(weak_fails: np.ndarray, strong_fails: np.ndarray) -> np.ndarray:
    """log P(weak fails) + log P(strong right): the log-probability that only the weak model fails, were the two
    failures independent given the words."""
    return np.asarray(np.log(np.maximum(weak_fails, _TINY)) + np.log(np.maximum(1.0 - strong_fails, _TINY)),
                      dtype=float)


def _group_keys(src: np.ndarray, subjects: Sequence[str], by_subject: bool) -> np.ndarray:
    """Each query's group: its data source, or its subject within its source."""
    return np.array([f"{a}\x00{b}" for a, b in zip(src, subjects, strict=True)]) if by_subject else src


def shared_columns(x: Any, group: np.ndarray, scale: float = GROUP_SCALE) -> Any:
    """[x, x in the block of its row's group × scale] (sparse), the blocks' unused columns dropped: the first
    x.shape[1] weights fitted on it are the words' shared weights (Daumé's feature augmentation)."""
    from scipy import sparse

    x = sparse.csr_matrix(x)
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    used, local = np.unique(group[rows].astype(np.int64) * x.shape[1] + x.indices, return_inverse=True)
    block = sparse.csr_matrix((x.data * scale, (rows, local)), shape=(x.shape[0], len(used)))
    return sparse.hstack([x, block]).tocsr()


def _rank(s: np.ndarray, grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Where each score falls among the training scores (0..1); ties in the grid share their mid-rank."""
    lo = np.interp(s, grid, points, left=0.0, right=1.0)
    hi = 1.0 - np.interp(-s, -grid[::-1], points, left=0.0, right=1.0)
    return (lo + hi) / 2.0


def _knn(q: np.ndarray, bank: np.ndarray, fails: np.ndarray) -> np.ndarray:
    """Similarity-weighted share of weak failures among the K nearest bank prompts (cosine)."""
    k = min(K, len(bank))
    out = np.empty(len(q))
    for s in range(0, len(q), 512):
        sims = q[s:s + 512] @ bank.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        ss = np.take_along_axis(sims, top, axis=1)
        w = np.exp((ss - ss.max(axis=1, keepdims=True)) / TEMPERATURE)
        out[s:s + 512] = (w * fails[top]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
    # Rounded: a share of exactly 0 or 1 is common, its training ranks are a plateau, and a last-bit difference
    # between a batch and a single request (BLAS) must not move a request from the plateau's end to its start.
    return np.round(out, 6)


def transfer(vectors: str = "embedding", cache: Any = None, **kw: Any) -> TransferRouter:
    return TransferRouter(make_vectors(vectors, cache), **kw)


register_kind("transfer", TransferRouter.restore)
