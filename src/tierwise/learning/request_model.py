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

Cost on the request path: hashing the prompt's first `max_chars` characters and counting its buckets (both in C,
routers/_tokenhash.c, when built), and a gather-dot of the coefficients; the loop reads a request's features only
when its decision uses them (bench/RESULTS.md, "A reflective route's decision, cheaper", has the measured time).
Memory: the coefficients (`n_buckets` floats), at most `max_rows` rows of sparse counts, and the features of at
most `PENDING` judged requests awaiting their verdicts.

`features: embedding` reads the prompt's shared sentence embedding (all-MiniLM-L6-v2, unit length: the kernel of
two requests is their cosine) instead of the hashed tokens, `both` gives each half of the kernel, and
`type_weight` gives that share of the kernel to the request's task-type label (1 between two requests of one type);
`frontier_label: w` adds the label with weight w only for task types the boundary has never moved (the loop keeps the
set of types that have moved in `unlabelled`), so a frontier type's own verdicts set its requests' level while the
types that have moved keep the pooled reading of their words.
Hashed tokens share little between two prompts, so the model's posterior sd about a new request stays near its
prior; an embedding (and the label) places a request among the judged ones of its subject, so the sd shrinks where
labelled neighbours exist (`bound: model`). The cost of an embedding: one encoder pass per request.

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
from tierwise.routers.features import bucket_counts, token_hashes

PENDING = 4096  # judged requests whose features wait for their verdict
# (bucket indices int32, counts float32) for `features: hashed` without the type label; else also
# (embedding float32 or None, task type)
Features = tuple[Any, ...]
# `bound: model`: Xᵀ (B × n, sparse), (K + alpha I)⁻¹, sigma^2, the rows' embeddings (n × d) and task types
Width = tuple[Any, ...]
# coefficients × IDF, IDF, intercept, width, and (embedding coefficients, per-type coefficients) or None
Fitted = tuple[Any, ...]


def kernel_weights(settings: RequestModelSettings) -> tuple[float, float, float]:
    """The shares of the kernel: hashed tokens, embedding, type label."""
    t = settings.type_weight
    h = {"hashed": 1.0, "embedding": 0.0, "both": 0.5}[settings.features]
    return (1.0 - t) * h, (1.0 - t) * (1.0 - h), t


def default_embed() -> Any:
    """The shared all-MiniLM-L6-v2 (`routers.features.Embedder`), one prompt at a time."""
    from tierwise.routers.features import Embedder

    enc = Embedder()
    return lambda text: enc.encode([text])[0]


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode("ascii")


class TextAcceptance:
    """The text model: features of judged requests, training rows, the fitted coefficients."""

    def __init__(self, settings: RequestModelSettings, embed: Any = None) -> None:
        self.settings = settings
        # rows carry (embedding, type)
        self.dense = settings.features != "hashed" or settings.type_weight > 0.0 or settings.frontier_label is not None
        self.embed = embed  # text -> unit-length embedding (`features: embedding|both`); loaded on first use
        # (embedding coefficients, per-type coefficients, per-type coefficients of `frontier_label`)
        self.coef_dense: tuple[np.ndarray | None, dict[str, float], dict[str, float]] | None = None
        # `frontier_label`: the task types the boundary has moved (kept by the loop); their requests carry no label
        self.unlabelled: set[str] = set()
        # (indices, counts, verdict), and (embedding or None, task type) when `dense`
        self.rows: deque[tuple[Any, ...]] = deque(maxlen=settings.max_rows)
        self.row_keys: deque[str] = deque(maxlen=settings.max_rows)  # the key name each row came from
        self.key_rows: dict[str, int] = {}  # rows held per key name
        self.key_cap = max(settings.min_rows, math.ceil(settings.max_rows * settings.max_key_share))
        self.pending: OrderedDict[str, tuple[Features, str, str]] = OrderedDict()  # (features, key, task type)
        # `type_offset`: per task type, the sum of its verdicts' residuals against the model and their number
        self.residuals: dict[str, tuple[float, int]] = {}
        self.coef: np.ndarray | None = None  # per bucket: ridge coefficient × IDF (a request's row needs no IDF)
        self.idf: np.ndarray | None = None
        self.intercept = 0.0
        self.width: Width | None = None  # `bound: model`: what the credible interval of an estimate needs
        self.since_fit = 0
        self.fits = 0
        self.defer = False  # set by a caller that runs refits itself, off its event loop
        self.fit_due = False

    def labelled_rows(self) -> bool:
        """Whether the rows carry their task type for a label (`type_weight` or `frontier_label`)."""
        return self.settings.type_weight > 0.0 or self.settings.frontier_label is not None

    @property
    def ready(self) -> bool:
        return self.coef is not None

    def features(self, text: str, task_type: str = "") -> Features:
        s = self.settings
        if s.features == "embedding":
            idx, cnt = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        else:
            idx, cnt = bucket_counts(token_hashes(text[: s.max_chars]), s.n_buckets)
        if not self.dense:
            return idx, cnt
        emb = None
        if s.features != "hashed":
            if self.embed is None:
                self.embed = default_embed()
            emb = np.asarray(self.embed(text[: s.max_chars]), dtype=np.float32)
        return idx, cnt, emb, task_type

    def estimate(self, f: Features) -> float | None:
        """The model's acceptance for a request's features (None until it has been fitted)."""
        if self.coef is None or self.idf is None:
            return None
        idx, cnt = f[0], f[1]
        tf = np.log(cnt)
        tf += 1.0  # 1 + log(count), in place (the same float32 sums)
        v = tf * self.idf[idx]  # the request's TF-IDF row, gathered and multiplied once for its norm
        norm = float(np.sqrt(np.dot(v, v))) or 1.0
        p = self.intercept + float(np.dot(self.coef[idx], tf)) / norm
        if self.coef_dense is not None and len(f) > 2:
            ce, ct, cf = self.coef_dense
            if ce is not None and f[2] is not None:
                p += float(np.dot(ce, f[2]))
            p += ct.get(f[3], 0.0)
            if cf and f[3] not in self.unlabelled:  # a type that moved since the fit has lost its label
                p += cf.get(f[3], 0.0)
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
        xt, inv, sigma2 = w[0], w[1], w[2]
        idx, cnt = f[0], f[1]
        v = (1.0 + np.log(cnt.astype(np.float64))) * self.idf[idx].astype(np.float64)
        v /= float(np.sqrt(np.dot(v, v))) or 1.0
        k = np.asarray(xt[idx].T @ v).ravel()  # the kernel with every training row
        kxx = float(np.dot(v, v))
        if len(w) > 3 and len(f) > 2:
            wh, we, wt = kernel_weights(self.settings)
            emb_rows, types = w[3], w[4]
            k *= wh
            kxx *= wh
            if we and f[2] is not None:
                e = f[2].astype(np.float64)
                k += we * (emb_rows @ e)
                kxx += we * float(np.dot(e, e))
            if wt:
                k += wt * (types == f[3])
                kxx += wt
            fl = self.settings.frontier_label
            if fl is not None and len(w) > 5 and f[3] not in self.unlabelled:
                k += fl * (w[5] == f[3])
                kxx += fl
        var = sigma2 / self.settings.alpha * max(0.0, kxx - float(k @ (inv @ k)))
        return math.sqrt(var)

    def offset(self, task_type: str) -> float:
        """`type_offset`: the type's mean residual, shrunk toward 0 as if `type_offset` more verdicts had none."""
        k = self.settings.type_offset
        got = self.residuals.get(task_type)
        if k is None or got is None:
            return 0.0
        return got[0] / (got[1] + k)

    def remember(self, request_id: str, f: Features, key: str = "", task_type: str = "") -> None:
        """A judged request's features (and the name of the key that sent it), kept until its verdict arrives
        (the oldest dropped beyond `PENDING`)."""
        self.pending[request_id] = (f, key, task_type)
        while len(self.pending) > PENDING:
            self.pending.popitem(last=False)

    def record(self, request_id: str | None, accepted: float) -> bool:
        """The verdict on a remembered request: one training row (refit every `refit_every` rows; with `defer`
        set, the refit is only flagged in `fit_due` for the caller to run off its event loop). Verdicts on
        requests the loop did not remember (not judged by it) train nothing."""
        got = self.pending.pop(request_id, None) if request_id is not None else None
        if got is None:
            return False
        f, key, task_type = got
        y = min(1.0, max(0.0, float(accepted)))
        if self.settings.type_offset is not None:
            q = self.estimate(f)  # the model before this row trains it: a residual held out of the fit
            if q is not None:
                r, m = self.residuals.get(task_type, (0.0, 0))
                self.residuals[task_type] = (r + y - q, m + 1)
        self._add_row((f[0], f[1], y) if len(f) == 2 else (f[0], f[1], y, f[2], f[3]), key)
        self.since_fit += 1
        if len(self.rows) >= self.settings.min_rows and (self.since_fit >= self.settings.refit_every
                                                         or self.coef is None):
            if self.defer:
                self.fit_due = True
            else:
                self.fit()
        return True

    def _add_row(self, row: tuple[Any, ...], key: str) -> None:
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

    def training_rows(self, leave_last: int = 0) -> list[tuple[Any, ...]]:
        """The rows a refit uses (a snapshot: the fit may run in another thread while rows keep arriving)."""
        self.since_fit = leave_last
        self.fit_due = False
        return list(self.rows)[: len(self.rows) - leave_last]

    def fit(self, leave_last: int = 0) -> None:
        """Refit on the rows (`leave_last`: without the latest ones — a restore refits the model the saved loop
        had)."""
        self.install(solve(self.training_rows(leave_last), self.settings, frozenset(self.unlabelled)))

    def install(self, fitted: Fitted | None) -> None:
        if fitted is not None:
            self.coef, self.idf, self.intercept, self.width = fitted[:4]
            self.coef_dense = fitted[4] if len(fitted) > 4 else None
            self.fits += 1

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_buckets": self.settings.n_buckets, "since_fit": self.since_fit,
            "residuals": {t: [r, m] for t, (r, m) in self.residuals.items()},
            "rows": [[_b64(r[0].astype(np.int32)), _b64(np.minimum(r[1], 65535).astype(np.uint16)), r[2]]
                     for r in self.rows]}
        if self.dense:  # the kernel's other parts: the embedding (float32) and the task type of each row
            out["features"] = [self.settings.features, self.labelled_rows()]
            out["dense"] = [["" if r[3] is None else _b64(r[3].astype(np.float32)), r[4]] for r in self.rows]
        return out

    def load(self, data: dict[str, Any]) -> None:
        """Restore the rows (what is malformed or was hashed into another number of buckets is skipped) and refit."""
        if not isinstance(data, dict) or data.get("n_buckets") != self.settings.n_buckets:
            return
        dense: list[Any] = []
        if not self.dense and data.get("features") is not None:
            return  # saved with embeddings or type labels (`features: embedding` rows have no hashed tokens)
        if self.dense:
            dense = data.get("dense") or []
            if (data.get("features") != [self.settings.features, self.labelled_rows()]
                    or not isinstance(dense, list) or len(dense) != len(data.get("rows") or [])):
                return  # saved under other features: nothing to refit from
        self._load_residuals(data.get("residuals"))
        b = self.settings.n_buckets
        rows: list[tuple[Any, ...]] = []
        for n, raw in enumerate(data.get("rows") or []):
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
            if not self.dense:
                rows.append((idx.copy(), cnt, y))
                continue
            extra = self._load_dense(dense[n])
            if extra is not None:
                rows.append((idx.copy(), cnt, y, *extra))
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


    def _load_residuals(self, raw: Any) -> None:
        self.residuals = {}
        for t, v in (raw.items() if isinstance(raw, dict) else ()):
            if (isinstance(t, str) and isinstance(v, list) and len(v) == 2 and isinstance(v[0], (int, float))
                    and isinstance(v[1], int) and v[1] >= 0 and math.isfinite(v[0]) and abs(v[0]) <= v[1]):
                self.residuals[t] = (float(v[0]), v[1])

    def _load_dense(self, raw: Any) -> tuple[np.ndarray | None, str] | None:
        try:
            se, task_type = raw
            emb = np.frombuffer(base64.b64decode(se, validate=True), dtype=np.float32).copy() if se else None
        except (TypeError, ValueError):
            return None
        if not isinstance(task_type, str) or (emb is None) != (self.settings.features == "hashed"):
            return None
        if emb is not None and (not len(emb) or not np.all(np.isfinite(emb))):
            return None
        return emb, task_type


def solve(rows: list[tuple[Any, ...]], settings: RequestModelSettings,
          unlabelled: frozenset[str] = frozenset()) -> Fitted | None:
    """Ridge regression of the verdict on the rows' TF-IDF features, in its dual form: with X the n × B matrix
    of normalised rows and y the verdicts, c = (X Xᵀ + alpha I)⁻¹ (y - ȳ), coefficients Xᵀ c. Returns the
    coefficients times the IDF (so a request's row needs no IDF), the IDF, the intercept ȳ and, with
    `bound: model`, the width (Xᵀ by bucket, (X Xᵀ + alpha I)⁻¹, and the mean square of the leave-one-out
    residuals c_i / [(X Xᵀ + alpha I)⁻¹]_ii). `unlabelled`: with `frontier_label`, the task types whose rows
    carry no label (the types the boundary has moved)."""
    from scipy.sparse import csr_matrix

    n = len(rows)
    if n < 2:
        return None
    b = settings.n_buckets
    df = np.zeros(b, dtype=np.float64)
    for r in rows:
        df[r[0]] += 1.0
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    vals, inds, ptr = [], [], [0]
    for r in rows:
        idx, cnt = r[0], r[1]
        v = (1.0 + np.log(cnt.astype(np.float64))) * idf[idx]
        vals.append(v / (float(np.sqrt(np.dot(v, v))) or 1.0))
        inds.append(idx)
        ptr.append(ptr[-1] + len(idx))
    x = csr_matrix((np.concatenate(vals), np.concatenate(inds), np.asarray(ptr)), shape=(n, b))
    y = np.fromiter((r[2] for r in rows), dtype=np.float64, count=n)
    mean = float(y.mean())
    k = (x @ x.T).toarray()
    dense = len(rows[0]) > 3
    wh, we, wt = kernel_weights(settings)
    emb = types = labels = None
    if dense:  # the kernel's parts: hashed tokens, embeddings (cosines), the type label (1 within a type)
        k *= wh
        if we:
            d = next((len(r[3]) for r in rows if r[3] is not None), 0)
            emb = np.stack([r[3].astype(np.float64) if r[3] is not None and len(r[3]) == d else np.zeros(d)
                            for r in rows])
            k += we * (emb @ emb.T)
        types = np.array([r[4] for r in rows], dtype=object)
        if wt:
            k += wt * (types[:, None] == types[None, :])
        if settings.frontier_label is not None:
            # the label only between rows of a type never moved (None, a moved type's row, equals no string)
            labels = np.array([None if t in unlabelled else t for t in types], dtype=object)
            same = (labels[:, None] == labels[None, :]) & (labels != None)[:, None]  # noqa: E711 (elementwise)
            k += settings.frontier_label * same
    k[np.diag_indices(n)] += settings.alpha
    width: Width | None = None
    if settings.bound == "model":
        inv = np.linalg.inv(k)
        c = inv @ (y - mean)
        loo = c / np.diag(inv)
        width = (x.T.tocsr(), inv, float(np.mean(loo * loo)))
        if dense:
            width = (*width, emb, types, labels)
    else:
        c = np.linalg.solve(k, y - mean)
    w = np.asarray(x.T @ c).ravel()
    if not dense:
        return (w * idf).astype(np.float32), idf.astype(np.float32), mean, width
    per_type: dict[str, float] = {}
    if wt:
        assert types is not None  # (set whenever the rows are dense)
        for t, ci in zip(types, c, strict=True):
            per_type[t] = per_type.get(t, 0.0) + wt * float(ci)
    per_frontier: dict[str, float] = {}
    if labels is not None:
        fl = float(settings.frontier_label or 0.0)
        for t, ci in zip(labels, c, strict=True):
            if t is not None:
                per_frontier[t] = per_frontier.get(t, 0.0) + fl * float(ci)
    ce = (we * (emb.T @ c)).astype(np.float32) if emb is not None else None
    return (wh * w * idf).astype(np.float32), idf.astype(np.float32), mean, width, (ce, per_type, per_frontier)




__all__ = ["RequestModelSettings", "TextAcceptance", "solve"]
