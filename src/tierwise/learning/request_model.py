"""A per-request model of local acceptance, trained only on the verdicts the loop bought (`request_model`).

The boundary decides per task type and `within` moves a request by its prompt's length inside its type. A
request's text says more: which subject, which kind of question. With `request_model: {kind: text}` the loop
keeps the hashed word, word-pair and character 4-gram features (`routers.features.token_hashes`, the `linear`
router's tokens) of every request it decides to judge, and when that request's verdict comes back — a judge
call or shadow run the loop paid for, or a verifier's verdict on it — adds (features, accepted) to a bounded set
of training rows (the latest `max_rows`). Every `refit_every` new rows it refits a ridge regression of the
verdict on the features (TF-IDF with the IDF of the training rows, L2-normalised rows; solved in its dual form,
an n × n system for n ≤ `max_rows` rows), so nothing is learnt from requests the loop did not pay to evaluate,
and feedback-prompted verdicts (a biased sample) are left out as they are for the boundary.

A request's acceptance is then (1 - `weight`) × the loop's own estimate (its type's posterior mean, moved by
the `within` slope when enabled) + `weight` × the text model's, once the model has `min_rows` rows; the request
takes the tier that estimate calls for against the quality target. With `combine: within` the slope moves the
blend instead: sigmoid(logit((1 - weight) × the type's mean + weight × the text model's) + slope × z), so at
weight 1.0 the text model gives the level and the prompt signal keeps its move inside the type. The model pools the verdicts of every type,
so it can stand in for a type's few counts; the type's own evidence keeps the other share, so a drifted type
(whose posterior the change-point test resets) still goes back to the frontier.

Cost on the request path: hashing the prompt's first `max_chars` characters, a `unique` over the hashes and a
gather-dot of the coefficients (bench/RESULTS.md, "Issue 21, session 18", has the measured time). Memory: the
coefficients (`n_buckets` floats), at most `max_rows` rows of sparse counts, and the features of at most
`PENDING` judged requests awaiting their verdicts.

The rows are shared by every client of the route, and a client chooses its prompts (and so, largely, whether
the local answer passes): one gateway key could fill the rows with verdicts on prompts carrying everyone
else's words and move every other client's estimate (to the frontier: a cost attack; or local). So a row
counts under the key name that sent its request, and one key holds at most `max_key_share` of `max_rows`
(at least `min_rows`, so a lone key still trains the model): a key at its cap replaces its own oldest row.
Requests without a key name (a gateway without keys) share one uncapped entry. The rows are part of the saved state as hashed bucket counts
(no text); the model is refitted from them on restore.
"""

from __future__ import annotations

import base64
import math
from collections import OrderedDict, deque
from typing import Any

import numpy as np

from tierwise.learning.request_model_settings import RequestModelSettings
from tierwise.routers.features import token_hashes

PENDING = 4096  # judged requests whose features wait for their verdict
Features = tuple[np.ndarray, np.ndarray]  # (bucket indices int32, counts float32)
Width = tuple[Any, np.ndarray, float]  # `bound: model`: Xᵀ (B × n, sparse), (X Xᵀ + alpha I)⁻¹, sigma^2
Fitted = tuple[np.ndarray, np.ndarray, float, Width | None]


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode("ascii")


class TextAcceptance:
    """The text model: features of judged requests, training rows, the fitted coefficients."""

    def __init__(self, settings: RequestModelSettings) -> None:
        self.settings = settings
        self.rows: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=settings.max_rows)
        self.row_keys: deque[str] = deque(maxlen=settings.max_rows)  # the key name each row came from
        self.key_rows: dict[str, int] = {}  # rows held per key name
        self.key_cap = max(settings.min_rows, math.ceil(settings.max_rows * settings.max_key_share))
        self.pending: OrderedDict[str, tuple[Features, str]] = OrderedDict()
        self.coef: np.ndarray | None = None  # per bucket: ridge coefficient × IDF (a request's row needs no IDF)
        self.idf: np.ndarray | None = None
        self.intercept = 0.0
        self.width: Width | None = None  # `bound: model`: what the credible interval of an estimate needs
        self.since_fit = 0
        self.fits = 0
        self.defer = False  # set by a caller that runs refits itself, off its event loop
        self.fit_due = False

    @property
    def ready(self) -> bool:
        return self.coef is not None

    def features(self, text: str) -> Features:
        h = token_hashes(text[: self.settings.max_chars])
        idx, cnt = np.unique(h & (self.settings.n_buckets - 1), return_counts=True)
        return idx.astype(np.int32), cnt.astype(np.float32)

    def estimate(self, f: Features) -> float | None:
        """The model's acceptance for a request's features (None until it has been fitted)."""
        if self.coef is None or self.idf is None:
            return None
        idx, cnt = f
        tf = 1.0 + np.log(cnt)
        norm = float(np.sqrt(np.dot(tf * self.idf[idx], tf * self.idf[idx]))) or 1.0
        p = self.intercept + float(np.dot(self.coef[idx], tf)) / norm
        return min(1.0, max(0.0, p))

    def sd(self, f: Features) -> float | None:
        """`bound: model`: the posterior standard deviation of the model's estimate for a request's features. The
        ridge regression is a Bayesian linear model (prior precision alpha / sigma^2 on the coefficients) whose
        estimate at a normalised row x has variance sigma^2 / alpha × (1 − k_xᵀ (K + alpha I)⁻¹ k_x), k_x the
        kernel of x with the training rows; sigma^2 is the mean square of the fit's leave-one-out residuals (its
        calibration on verdicts held out of the fit). Wide for a prompt unlike any judged one, narrow among many
        similar judged prompts."""
        w = self.width
        if w is None or self.idf is None:
            return None
        xt, inv, sigma2 = w
        idx, cnt = f
        v = (1.0 + np.log(cnt.astype(np.float64))) * self.idf[idx].astype(np.float64)
        v /= float(np.sqrt(np.dot(v, v))) or 1.0
        k = np.asarray(xt[idx].T @ v).ravel()  # the kernel with every training row
        var = sigma2 / self.settings.alpha * max(0.0, float(np.dot(v, v)) - float(k @ (inv @ k)))
        return math.sqrt(var)

    def remember(self, request_id: str, f: Features, key: str = "") -> None:
        """A judged request's features (and the name of the key that sent it), kept until its verdict arrives
        (the oldest dropped beyond `PENDING`)."""
        self.pending[request_id] = (f, key)
        while len(self.pending) > PENDING:
            self.pending.popitem(last=False)

    def record(self, request_id: str | None, accepted: float) -> bool:
        """The verdict on a remembered request: one training row (refit every `refit_every` rows; with `defer`
        set, the refit is only flagged in `fit_due` for the caller to run off its event loop). Verdicts on
        requests the loop did not remember (not judged by it) train nothing."""
        got = self.pending.pop(request_id, None) if request_id is not None else None
        if got is None:
            return False
        f, key = got
        self._add_row((f[0], f[1], min(1.0, max(0.0, float(accepted)))), key)
        self.since_fit += 1
        if len(self.rows) >= self.settings.min_rows and (self.since_fit >= self.settings.refit_every
                                                         or self.coef is None):
            if self.defer:
                self.fit_due = True
            else:
                self.fit()
        return True

    def _add_row(self, row: tuple[np.ndarray, np.ndarray, float], key: str) -> None:
        held = self.key_rows.get(key, 0)
        if key and held >= self.key_cap:  # at its cap: the key's oldest row goes (verdicts are rare: a scan)
            i = self.row_keys.index(key)
            del self.rows[i], self.row_keys[i]
            held -= 1
        elif len(self.rows) == self.rows.maxlen:  # full: the oldest row goes, whoever sent it
            gone = self.row_keys.popleft()
            self.rows.popleft()
            self.key_rows[gone] -= 1
            if not self.key_rows[gone]:
                del self.key_rows[gone]
            if gone == key:
                held -= 1
        self.rows.append(row)
        self.row_keys.append(key)
        self.key_rows[key] = held + 1

    def training_rows(self, leave_last: int = 0) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """The rows a refit uses (a snapshot: the fit may run in another thread while rows keep arriving)."""
        self.since_fit = leave_last
        self.fit_due = False
        return list(self.rows)[: len(self.rows) - leave_last]

    def fit(self, leave_last: int = 0) -> None:
        """Refit on the rows (`leave_last`: without the latest ones — a restore refits the model the saved loop
        had)."""
        self.install(solve(self.training_rows(leave_last), self.settings))

    def install(self, fitted: Fitted | None) -> None:
        if fitted is not None:
            self.coef, self.idf, self.intercept, self.width = fitted
            self.fits += 1

    def dump(self) -> dict[str, Any]:
        return {"n_buckets": self.settings.n_buckets, "since_fit": self.since_fit,
                "rows": [[_b64(i.astype(np.int32)), _b64(np.minimum(c, 65535).astype(np.uint16)), y]
                         for i, c, y in self.rows]}

    def load(self, data: dict[str, Any]) -> None:
        """Restore the rows (what is malformed or was hashed into another number of buckets is skipped) and refit."""
        if not isinstance(data, dict) or data.get("n_buckets") != self.settings.n_buckets:
            return
        b = self.settings.n_buckets
        rows = []
        for raw in data.get("rows") or []:
            try:
                si, sc, y = raw
                idx = np.frombuffer(base64.b64decode(si, validate=True), dtype=np.int32)
                cnt = np.frombuffer(base64.b64decode(sc, validate=True), dtype=np.uint16).astype(np.float32)
                y = float(y)
            except (TypeError, ValueError):
                continue
            if len(idx) != len(cnt) or not math.isfinite(y) or not 0.0 <= y <= 1.0:
                continue
            if len(idx) and (idx.min() < 0 or idx.max() >= b or cnt.min() < 1):
                continue
            rows.append((idx.copy(), cnt, y))
        self.rows.clear()
        self.rows.extend(rows)  # the deque keeps the latest `max_rows`
        self.row_keys.clear()  # saved rows carry no key names: they count as the gateway's own
        self.row_keys.extend("" for _ in self.rows)
        self.key_rows = {"": len(self.rows)} if self.rows else {}
        since = data.get("since_fit")
        since = min(since, len(self.rows)) if isinstance(since, int) and since >= 0 else 0
        self.since_fit = since
        if len(self.rows) - since >= self.settings.min_rows:
            self.fit(leave_last=since)


def solve(rows: list[tuple[np.ndarray, np.ndarray, float]], settings: RequestModelSettings) -> Fitted | None:
    """Ridge regression of the verdict on the rows' TF-IDF features, in its dual form: with X the n × B matrix
    of normalised rows and y the verdicts, c = (X Xᵀ + alpha I)⁻¹ (y - ȳ), coefficients Xᵀ c. Returns the
    coefficients times the IDF (so a request's row needs no IDF), the IDF, the intercept ȳ and, with
    `bound: model`, the width (Xᵀ by bucket, (X Xᵀ + alpha I)⁻¹, and the mean square of the leave-one-out
    residuals c_i / [(X Xᵀ + alpha I)⁻¹]_ii)."""
    from scipy.sparse import csr_matrix

    n = len(rows)
    if n < 2:
        return None
    b = settings.n_buckets
    df = np.zeros(b, dtype=np.float64)
    for idx, _, _ in rows:
        df[idx] += 1.0
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    vals, inds, ptr = [], [], [0]
    for idx, cnt, _ in rows:
        v = (1.0 + np.log(cnt.astype(np.float64))) * idf[idx]
        vals.append(v / (float(np.sqrt(np.dot(v, v))) or 1.0))
        inds.append(idx)
        ptr.append(ptr[-1] + len(idx))
    x = csr_matrix((np.concatenate(vals), np.concatenate(inds), np.asarray(ptr)), shape=(n, b))
    y = np.fromiter((r[2] for r in rows), dtype=np.float64, count=n)
    mean = float(y.mean())
    k = (x @ x.T).toarray()
    k[np.diag_indices(n)] += settings.alpha
    width: Width | None = None
    if settings.bound == "model":
        inv = np.linalg.inv(k)
        c = inv @ (y - mean)
        loo = c / np.diag(inv)
        width = (x.T.tocsr(), inv, float(np.mean(loo * loo)))
    else:
        c = np.linalg.solve(k, y - mean)
    w = np.asarray(x.T @ c).ravel()
    return (w * idf).astype(np.float32), idf.astype(np.float32), mean, width




__all__ = ["RequestModelSettings", "TextAcceptance", "solve"]
