"""Windowed placement: a request's score pulled towards the mean score of its nearest neighbours in recent traffic.

On subjects a router never saw it ranks the questions inside a subject well but places whole subjects against each
other poorly (bench/RESULTS.md, "Transfer round 15"); the mean score over many similar questions places a subject
with less noise than one question's score. Round 15 did that for a batch (routers/placement.py, clusters of the
scored traffic). A gateway route scores one request at a time, so here the neighbours come from the requests the
route has already seen: a bounded ring of the last `size` requests' unit vectors (the router's training profile's
LSA of the words, 64 numbers each) and their raw scores. A request's placed score is

    score + weight × (mean raw score of its `k` most similar requests in the window − mean raw score of the window)

computed before the request joins the window (only past requests count; with fewer than `k` in the window the score
is left alone). `window-tokens` (session 34, transfer17) finds the neighbours in another space: the prompt read by the
router's own static token vectors (routers/static_tokens.py, distilled from all-MiniLM-L6-v2: the table `transfer`'s
options member carries, with its weights), 384 numbers; on held-out MMLU subjects a request's 20 nearest share its
subject about 0.7 of the time there against about 0.55 in the profile's LSA (bench/RESULTS.md, "Transfer round 17"). Memory is `size` × (dims + 1) numbers; a decision costs one matrix-vector product over the window
and a partial sort. `stream` replays a batch in a given arrival order with the same arithmetic (`tierwise eval`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger("tierwise")
SIZE = 1000  # requests kept
K = 20  # neighbours averaged (round 16: the preview on spent P10 chose 20 of 20 / 50 / 100)
WEIGHT = 1.0
WINDOWS = ("none", "window", "window-tokens")
JUDGED_SIZE, JUDGED_K, JUDGED_WEIGHT = 1000, 20, 1.0  # the judged window (see `RoutePlacement`)
MAX_DIMS = 4096  # numbers a saved vector may have (the encoders give 64 or 384)


class PlacementWindow:
    """The last `size` requests' unit vectors and raw scores; `place` scores one request against them, then keeps it.

    The window is shared by a route's clients, so one client could fill it with neighbours of its choosing and move
    everyone else's placement; as the threshold's re-fit window (routers/refit.py), each request is kept under its
    client's key name and one key holds at most `key_share` of the window (never fewer than `k` slots): a key at its
    cap replaces its own oldest request. Requests without a key name share one uncapped entry."""

    def __init__(self, size: int = SIZE, k: int = K, weight: float = WEIGHT, key_share: float = 1.0) -> None:
        if size < 1 or k < 1 or k > size:
            raise ValueError(f"need 1 <= k <= size; got k={k}, size={size}")
        if not 0.0 < key_share <= 1.0:
            raise ValueError("key_share must be above 0 and at most 1")
        self.size, self.k, self.weight = size, k, float(weight)
        self.key_cap = max(k, math.ceil(size * key_share))
        self.vectors: np.ndarray | None = None  # (size, dims) float32, made at the first request
        self.scores = np.zeros(size, dtype=np.float64)
        self.held = 0  # slots filled
        self.seen = 0  # requests kept so far
        self._slots: dict[str, deque[int]] = {}  # key name -> its slots, oldest first
        self._owner: list[str] = [""] * size
        self._order: OrderedDict[int, None] = OrderedDict()  # held slots, least recently written first

    def __len__(self) -> int:
        return self.held

    def shift(self, vector: np.ndarray) -> float:
        """What `place` adds to a score of a request with this (unit) vector: weight × (its neighbours' mean − the
        window's mean); 0 with fewer than k requests in the window."""
        m = self.held
        if m < self.k or self.vectors is None or self.vectors.shape[1] != np.size(vector):
            return 0.0
        sims = self.vectors[:m] @ np.asarray(vector, dtype=np.float32).ravel()
        near = np.argpartition(sims, m - self.k)[m - self.k:]
        return self.weight * (float(self.scores[near].mean()) - float(self.scores[:m].mean()))

    def add(self, vector: np.ndarray, score: float, key: str = "") -> int | None:
        """Keep one request; its slot (None: not kept, a number that is not finite)."""
        v = np.asarray(vector, dtype=np.float32).ravel()
        if not (math.isfinite(score) and np.isfinite(v).all()):
            return None
        if self.vectors is None or self.vectors.shape[1] != len(v):
            self._clear(len(v))
        assert self.vectors is not None
        mine = self._slots.setdefault(key, deque())
        if key and len(mine) >= self.key_cap:
            slot = mine.popleft()  # at its cap: the key's newest request replaces its own oldest
        elif self.held < self.size:
            slot = self.held
            self.held += 1
        else:
            slot = next(iter(self._order))  # the oldest request of the window, whoever sent it
            owner = self._slots[self._owner[slot]]
            owner.popleft()
            if not owner and self._owner[slot] != key:
                del self._slots[self._owner[slot]]
        self.vectors[slot], self.scores[slot], self._owner[slot] = v, float(score), key
        self._order[slot] = None
        self._order.move_to_end(slot)
        mine.append(slot)
        self.seen += 1
        return slot

    def _clear(self, dims: int) -> None:
        self.vectors = np.zeros((self.size, dims), dtype=np.float32)
        self.held = self.seen = 0
        self._slots.clear()
        self._order.clear()

    def place(self, vector: np.ndarray, score: float, key: str = "") -> float:
        """The request's placed score (against the requests before it); then the request joins the window."""
        placed = float(score) + self.shift(vector)
        self.add(vector, score, key)
        return placed

    def stream(self, vectors: np.ndarray, scores: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
        """A batch placed as a route would see it arrive, in `order` (default: as given); returned in input order."""
        s = np.asarray(scores, dtype=float)
        out = s.copy()
        for i in (np.arange(len(s)) if order is None else np.asarray(order)):
            out[i] = self.place(vectors[i], s[i])
        return out

    # --- persistence (the route's state file, routers/route_memory.py) -----------------------------------------
    def state(self) -> dict[str, Any]:
        """Copies of the held requests, oldest first: vectors, raw scores and key names (`jsonable` for a file)."""
        if self.held == 0 or self.vectors is None:
            return {"vectors": np.zeros((0, 0), np.float32), "scores": np.zeros(0), "keys": []}
        order = np.fromiter(self._order, dtype=np.intp, count=len(self._order))
        return {"vectors": self.vectors[order], "scores": self.scores[order], "keys": [self._owner[i] for i in order]}

    @staticmethod
    def jsonable(state: dict[str, Any]) -> dict[str, Any]:
        """`state` for a JSON file: the vectors as one base64 blob of float16s, row after row (`dims` numbers each;
        768 bytes a `window-tokens` request: 1.0 MB for a full window, encoded in about a millisecond, where 4-decimal
        JSON lists took ~3 MB and ~0.2 s of CPU holding the GIL in the writer's thread, stalling the event loop). The
        vectors are unit vectors (both encoders normalise), so float16's relative rounding (2^-11) moves a cosine by at
        most 2^-11 and a neighbour set only at near-ties."""
        vecs = np.ascontiguousarray(state["vectors"], dtype="<f2")
        return {"dims": int(vecs.shape[1]) if vecs.ndim == 2 else 0,
                "vectors": base64.b64encode(vecs.tobytes()).decode("ascii"), "scores": state["scores"].tolist(),
                "keys": list(state["keys"])}

    def restore(self, state: Any) -> bool:
        """Refill from `state` (oldest first; of more than `size` requests, the newest `size`), each request added as
        it was (so every key's cap holds); a state that is not one `state` / `jsonable` wrote — a blob that is not
        base64, not `scores` × `dims` float16s or holds a non-finite number, `dims` past MAX_DIMS — leaves the window
        empty and returns False. (A file of before session 34 holds the vectors as lists of numbers: read too.)"""
        self.vectors, self.held, self.seen = None, 0, 0
        self._slots.clear()
        self._order.clear()
        try:
            scores = np.asarray(state["scores"], dtype=np.float64)
            keys = [str(k) for k in state["keys"]]
            vecs = _saved_vectors(state, len(scores), self.size)
        except (TypeError, ValueError, KeyError, IndexError, binascii.Error):
            return False
        if scores.ndim != 1 or len(scores) == 0:
            return len(scores) == 0 and len(vecs) == 0 and not keys
        if vecs.ndim != 2 or not len(vecs) == min(len(scores), self.size) or len(scores) != len(keys) or not (
                np.isfinite(vecs).all() and np.isfinite(scores).all()):
            return False
        tail = len(vecs)
        for v, s, key in zip(vecs, scores[-tail:], keys[-tail:], strict=True):
            self.add(v, float(s), key)
        return True


def _saved_vectors(state: Any, rows: int, keep: int) -> np.ndarray:
    """The newest `keep` of a saved window's `rows` vectors, as float32: from `jsonable`'s blob (its length checked
    before it is decoded), or from the lists of a file of before session 34."""
    blob = state["vectors"]
    if not isinstance(blob, str):
        return np.asarray(blob[-keep:] if isinstance(blob, list) else blob, dtype=np.float32)
    dims = state["dims"]
    if isinstance(dims, bool) or not isinstance(dims, int) or not 0 <= dims <= MAX_DIMS or (rows > 0) != (dims > 0):
        raise ValueError("dims out of range")
    if len(blob) != 4 * math.ceil(rows * dims * 2 / 3):  # base64 of rows × dims float16s, padded
        raise ValueError("the blob does not hold one vector a score")
    raw = base64.b64decode(blob, validate=True)
    return np.frombuffer(raw, dtype="<f2").reshape(rows, dims)[-keep:].astype(np.float32)


def stream_placed(scores: np.ndarray, vectors: np.ndarray, seed: int = 0, size: int = SIZE, k: int = K,
                  weight: float = WEIGHT) -> np.ndarray:
    """`scores` placed by a fresh window as if the requests arrived in a random order (seeded), in input order."""
    order = np.random.default_rng(seed).permutation(len(scores))
    return PlacementWindow(size, k, weight).stream(vectors, scores, order)


class RoutePlacement:
    """A `learned` route's windowed placement: the prompt's vector (the router's training-profile LSA of the words,
    a tokenisation and a 64-column gather; or its static token vectors, a tokenisation and a 384-column gather), then
    `PlacementWindow.place`. With `judged` (a second window, of judged requests: their vectors and judged gains), the
    placed score also moves by `judged.shift`: the mean judged gain (strong outcome − weak outcome, what the judge
    said of a shadow pair) of the request's nearest judged past requests less the judged window's mean. The bank term
    (`placement_bank`) is `routers/bank.py`'s `BankedPlacement`, a subclass: a route without it runs this code only."""

    bank: Any = None

    def __init__(self, encode: Callable[[Any], np.ndarray], window: PlacementWindow,
                 judged: PlacementWindow | None = None) -> None:
        self.encode = encode
        self.window = window
        self.judged = judged

    def place(self, prompt: Any, score: float, key: str = "") -> float:
        v = self.encode(prompt)
        placed = self.window.place(v, score, key)
        return placed if self.judged is None else placed + self.judged.shift(v)

    def verdict(self, prompt: Any, strong: float, weak: float, key: str = "") -> None:
        """A judged pair's outcomes (each in [0, 1]): its gain joins the judged window (no-op without one)."""
        if self.judged is not None:
            self.judged.add(self.encode(prompt), float(strong) - float(weak), key)


def judged_stream(scores: np.ndarray, vectors: np.ndarray, strong: np.ndarray, weak: np.ndarray, judged: np.ndarray,
                  seed: int = 0, size: int = SIZE, k: int = K, weight: float = WEIGHT, judged_size: int = JUDGED_SIZE,
                  judged_k: int = JUDGED_K, judged_weight: float = JUDGED_WEIGHT) -> np.ndarray:
    """`stream_placed` with judged verdicts, as a route with online validation sees them: the requests arrive in the
    same seeded order; a request with `judged` true has its outcomes (`strong`, `weak`) judged, and its verdict is
    known to every request after it (a route: once its shadow pair is judged). Returned in input order."""
    order = np.random.default_rng(seed).permutation(len(scores))
    s = np.asarray(scores, dtype=float)
    out = s.copy()
    route = RoutePlacement(lambda i: vectors[i], PlacementWindow(size, k, weight),
                           PlacementWindow(judged_size, judged_k, judged_weight))
    for i in order:
        out[i] = route.place(i, s[i])
        if judged[i]:
            route.verdict(i, strong[i], weak[i])
    return out


def route_stream(scores: np.ndarray, vectors: np.ndarray, seed: int = 0, bank: Any = None, bank_weight: float = 0.0,
                 verdicts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """A batch placed by the `RoutePlacement` a route builds (`tierwise eval`): the window, with `verdicts` (strong,
    weak outcomes, which are judged) the judged window, with `bank` (routers/bank.py `NeighbourBank`) and
    `bank_weight` > 0 the bank term; the requests arrive in the seeded order; returned in input order."""
    from tierwise.routers.bank import BankedPlacement, BankTerm

    s = np.asarray(scores, dtype=float)
    out = s.copy()
    judged = PlacementWindow(JUDGED_SIZE, JUDGED_K, JUDGED_WEIGHT) if verdicts is not None else None
    route = BankedPlacement(lambda i: vectors[i], BankTerm(bank, bank_weight), judged=judged) \
        if bank is not None and bank_weight > 0 else RoutePlacement(lambda i: vectors[i], PlacementWindow(), judged)
    for i in np.random.default_rng(seed).permutation(len(s)):
        out[i] = route.place(i, s[i])
        if verdicts is not None and verdicts[2][i]:
            route.verdict(i, verdicts[0][i], verdicts[1][i])
    return out


def judged_draws(n: int, rate: float, seed: int = 0) -> np.ndarray:
    """Which of `n` requests (input order) `tierwise eval` treats as judged at a route's shadow rate `rate`."""
    return np.random.default_rng(seed + 1).random(n) < rate


def token_vectors(router: Any) -> Any:
    """The router's fitted static token vectors (`transfer`, `transfer-lsa-options`: its options member's), or None."""
    from tierwise.routers.static_tokens import StaticTokenVectors

    v = getattr(router, "vectors", None)
    return v if isinstance(v, StaticTokenVectors) and v.table is not None and v.weight is not None else None


def token_encoder(vectors: Any) -> Callable[[str], np.ndarray]:
    return lambda prompt: vectors.encode([prompt])[0]


def route_placement(setting: str, router: Any, route: str, key_share: float = 1.0,
                    judged: bool = False, bank_weight: float = 0.0) -> RoutePlacement | None:
    """The placement of a route's scores for `placement: window` / `window-tokens`, or None: for "none", for a router
    whose scores are not placed (only the transferred routers were measured: routers/placement.py `places`), for
    `window` a router saved without a training profile, for `window-tokens` one without static token vectors
    (`transfer-lsa`, `transfer-lsa-options-minilm`): both logged. `judged`: the placement also averages judged
    verdicts (a route with online validation: `RoutePlacement.verdict`). `bank_weight` > 0 (`placement_bank`): with
    `window-tokens` the bank term of the router's training bank (routers/bank.py; a router saved without one: logged,
    placed without it)."""
    from tierwise.routers.placement import places

    if setting not in WINDOWS:
        raise ValueError(f"placement must be one of {WINDOWS}; got {setting!r}")
    if setting == "none" or not places(router.kind, getattr(getattr(router, "base", None), "kind", None)):
        return None
    if setting == "window-tokens":
        tokens = token_vectors(router)
        if tokens is None:
            log.warning("route %s: its router carries no static token vectors (only `transfer` and "
                        "`transfer-lsa-options` do), so its scores are not placed by `window-tokens`", route)
            return None
        term = _bank(router, route, bank_weight)
        if term is not None:
            from tierwise.routers.bank import BankedPlacement

            return BankedPlacement(token_encoder(tokens), term, key_share, _judged(judged, key_share))
        return RoutePlacement(token_encoder(tokens), PlacementWindow(key_share=key_share), _judged(judged, key_share))
    profile = getattr(router, "profile", None)
    if profile is None:
        log.warning("route %s: its router carries no training profile, so its scores are not placed by the window "
                    "(re-save it with `tierwise eval DATA -r SPEC --no-cv --save PATH`)", route)
        return None
    return RoutePlacement(profile.lsa.encode_one, PlacementWindow(key_share=key_share), _judged(judged, key_share))


def _bank(router: Any, route: str, weight: float) -> Any:
    if weight <= 0:
        return None
    from tierwise.routers.bank import BankTerm

    bank = getattr(router, "bank", None)
    if bank is None:
        log.warning("route %s: its router carries no training bank (a `transfer` saved since session 37 does), so "
                    "`placement_bank` adds nothing; re-save it with `tierwise eval DATA -r transfer --no-cv --save "
                    "PATH`", route)
        return None
    return BankTerm(bank, weight)


def _judged(on: bool, key_share: float) -> PlacementWindow | None:
    return PlacementWindow(JUDGED_SIZE, JUDGED_K, JUDGED_WEIGHT, key_share) if on else None
