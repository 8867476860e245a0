"""Online validation of a deployed learned route (issue 22, part 2): how well is it routing live traffic?

The evidence is the route's *judged shadow pairs*: requests where both tiers answered (the served answer
and the shadow run's), each answer graded by a judge, and the router's score and threshold at the time.
On those pairs this module computes what `tierwise eval` computes offline:
- the route's APGR with a percentile-bootstrap interval (`metrics.bootstrap_apgr`);
- against random: random routing's expected APGR is 0.5 (its quality grows linearly with the strong
  share), so the route is *better than random with confidence* when the interval's lower end is above 0.5;
- against prompt length (longer prompt → strong), paired on the same resamples;
- at the route's own frontier share (the share of pairs its score put at or above the threshold): the
  share of the weak→strong quality gap it recovered, beside random's (the share itself) and prompt
  length's at that same share.

`OnlineValidator` keeps the last `window` pairs of one live route, re-estimates when a pair arrives (off the
request path: the shadow task calls it) and answers the route guard's question "demote?" from the latest
estimate, so a request only reads a cached verdict. The pairs come from every client's requests, so each is
counted under the name of the gateway key that sent it, as in the shift window (routers/shift.py): one key
holds at most `key_cap` of the window, and no one key demotes the route while the window holds others' pairs
(see `OnlineValidator`). `ledger_pairs` / `ledger_estimates` read the same
evidence back from the ledger for `tierwise eval ledger`, `tierwise boundary` and the dashboard.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

RANDOM_APGR = 0.5  # expected APGR of random routing, whatever the data
# Once demoted, the lower end must clear random by this much to re-promote (`validation.promote_margin`): the demote
# and promote thresholds of the online verdict, as shift's `demote_above`/`promote_below`. Without it a lower end
# hovering at 0.494-0.506 flipped the route 9 times in 20 requests (bench/RESULTS.md, newuser36b's "Not fixed").
PROMOTE_MARGIN = 0.02
# Widest interval that still tells anything: as wide as the whole way from the weak tier's quality to the strong's.
# A bootstrap of APGR, a ratio over the tiers' judged gap, had intervals of 2-10 at 50 pairs (resamples where the
# gap nearly vanishes), whose low end under 0.5 read "not better than random" and let the guard demote on it.
MAX_WIDTH = 1.0
LEFT_OUT_KEYS = 3  # keys (the largest holders) whose pairs a "not better than random" verdict is re-taken without
PROMPT_CHARS = 8_000  # of a judged pair's prompt kept for a route that adapts (routers/adapt.py reads no more)
# and at most this many bytes of it as the route's state file holds it (UTF-8 JSON): 2,000 prompts of emoji or control
# characters (4 or 6 bytes a character there) made a file past what a restart reads (route_memory.MAX_FILE_BYTES)
PROMPT_BYTES = 24_000


def kept_prompt(text: str) -> str:
    """`text` cut to what a judged pair keeps of it: `PROMPT_CHARS` characters, `PROMPT_BYTES` bytes in the state
    file (all of any text of up to 3 bytes a character: every script but emoji's)."""
    text = text[:PROMPT_CHARS]
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (a client's JSON may carry one): no UTF-8 file could hold it
        text = text.encode("utf-8", "replace").decode()
    while len(size := json.dumps(text, ensure_ascii=False).encode()) > PROMPT_BYTES:
        text = text[:max(0, len(text) * PROMPT_BYTES // len(size) - 1)]
    return text


@dataclass(frozen=True)
class JudgedPair:
    prompt_chars: int  # only the length is kept: the prompt-length baseline needs nothing else
    score: float
    threshold: float
    strong: float  # judged outcome of the strong tier's answer (0 … 1)
    weak: float
    key: str = ""  # the name of the gateway key whose request it was ("" on a gateway without keys)
    prompt: str = ""  # kept only for a route that adapts (`learned.adapt`), for its newest `adapt.window` pairs


@dataclass(frozen=True)
class OnlineEstimate:
    n: int
    verdict: str  # better-than-random | not-better-than-random | too-few-pairs | undefined
    apgr: float | None = None
    low: float | None = None
    high: float | None = None
    length_apgr: float | None = None
    lead_over_length_low: float | None = None  # paired interval of APGR(route) − APGR(prompt length)
    lead_over_length_high: float | None = None
    strong_share: float | None = None  # share of pairs the route's score put on the strong tier
    recovered: float | None = None  # share of the quality gap recovered at that frontier share
    random_recovered: float | None = None  # random routing's at the same share (= the share)
    length_recovered: float | None = None  # prompt length's at the same share
    min_pairs: int = 0
    level: float = 0.95
    left_out: int = 0  # pairs of one key the verdict was taken without (no one key demotes the route)
    adapted: dict[str, Any] | None = None  # the route's adaptation on these pairs (routers/adapt.py), if any

    @property
    def better_than_random(self) -> bool | None:
        return None if self.verdict in ("too-few-pairs", "undefined") else self.verdict == "better-than-random"

    def sentence(self) -> str:
        if self.verdict == "too-few-pairs" and self.low is not None and self.high is not None:
            return (f"online estimate: too few judged pairs to tell ({self.n}): APGR {self.apgr:.3f}, its "
                    f"{self.level:.0%} interval {self.low:.3f}–{self.high:.3f} is wider than {MAX_WIDTH:g}")
        if self.verdict == "too-few-pairs":
            return f"online estimate: {self.n} judged pairs, {self.min_pairs} needed"
        if self.verdict == "undefined":
            return (f"online estimate: undefined on {self.n} judged pairs (the two tiers' judged outcomes do not "
                    "differ enough)")
        assert self.apgr is not None and self.low is not None and self.high is not None
        what = "better than random" if self.verdict == "better-than-random" else "not better than random"
        text = (f"online APGR {self.apgr:.3f} ({self.level:.0%} interval {self.low:.3f}–{self.high:.3f}) on "
                f"{self.n} judged shadow pairs: {what} with confidence (random 0.500")
        if self.length_apgr is not None:
            text += f", prompt length {self.length_apgr:.3f}"
        text += ")"
        if self.left_out:
            text += f", without the {self.left_out} pairs of one gateway key (no one key decides)"
        if self.strong_share is not None and self.recovered is not None:
            text += (f"; at its {self.strong_share:.0%} frontier share it recovers {self.recovered:.0%} of the "
                     f"quality gap (random {self.random_recovered:.0%}, prompt length {self.length_recovered:.0%})")
        if self.adapted:
            from tierwise.routers.adapt import adaptation_sentence

            text += "; " + adaptation_sentence(self.adapted)
        return text

    def brief(self) -> dict[str, Any]:
        """What a trace carries per request."""
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {"n": self.n, "verdict": self.verdict, "apgr": r(self.apgr), "low": r(self.low), "high": r(self.high)}

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sentence": self.sentence()}


def _recovered(strong_mask: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> float | None:
    gap = float(strong.mean() - weak.mean())
    if gap == 0:
        return None
    return float((np.where(strong_mask, strong, weak).mean() - weak.mean()) / gap)


def estimate(pairs: Sequence[JudgedPair], *, min_pairs: int = 50, rounds: int = 300, level: float = 0.95,
             seed: int = 0) -> OnlineEstimate:
    """The route's quality on judged pairs, with an interval and the baselines (see the module docstring)."""
    from tierwise.evaluation.metrics import apgr, bootstrap_apgr, routing_curve

    n = len(pairs)
    if n < max(2, min_pairs):
        return OnlineEstimate(n, "too-few-pairs", min_pairs=min_pairs, level=level)
    score = np.array([p.score for p in pairs], dtype=float)
    strong = np.array([p.strong for p in pairs], dtype=float)
    weak = np.array([p.weak for p in pairs], dtype=float)
    length = np.array([p.prompt_chars for p in pairs], dtype=float)
    thr = np.array([p.threshold for p in pairs], dtype=float)
    try:
        value = apgr(routing_curve(score, strong, weak))
        ci = bootstrap_apgr(score, strong, weak, rounds=rounds, level=level, seed=seed)
    except ValueError:  # both tiers judged alike on (almost) every pair: nothing to rank by
        return OnlineEstimate(n, "undefined", min_pairs=min_pairs, level=level)
    # No router's APGR on these pairs is below the anti-oracle's or above the oracle's: the interval is clipped to
    # that range; still wider than MAX_WIDTH, it tells nothing (too few pairs), and no verdict is taken on it.
    gain = strong - weak
    low = max(ci.low, apgr(routing_curve(-gain, strong, weak)))
    high = min(ci.high, apgr(routing_curve(gain, strong, weak)))
    if high - low > MAX_WIDTH:
        return OnlineEstimate(n, "too-few-pairs", value, low, high, min_pairs=min_pairs, level=level)
    length_apgr = lead_low = lead_high = None
    try:
        length_apgr = apgr(routing_curve(length, strong, weak))
        lead = bootstrap_apgr(score, strong, weak, against=length, rounds=rounds, level=level, seed=seed)
        lead_low, lead_high = lead.low, lead.high
    except ValueError:
        pass
    routed = score >= thr
    share = float(routed.mean())
    k = int(routed.sum())
    by_length = np.zeros(n, dtype=bool)
    by_length[np.argsort(-length, kind="stable")[:k]] = True  # the k longest prompts: length at the same share
    verdict = "better-than-random" if low > RANDOM_APGR else "not-better-than-random"
    return OnlineEstimate(n, verdict, value, low, high, length_apgr, lead_low, lead_high, share,
                          _recovered(routed, strong, weak), share, _recovered(by_length, strong, weak),
                          min_pairs, level)


class OnlineValidator:
    """The live estimate of one route over its last `window` judged pairs, and the guard's demotion check.

    The pairs were taken from every client's requests, and one client sending prompts the router errs on
    (hard questions worded like easy ones) pulled the estimate below random and demoted the route for all of
    them. So each pair counts under the name of the key that sent it, and, as in the shift window:
    - one key holds at most `key_cap` pairs (`key_share` of the window, never fewer than `min_pairs`): a key at
      its cap replaces its own oldest pair, so a flood does not push the others' pairs out;
    - a "not better than random" verdict is taken again without the pairs of each of the `LEFT_OUT_KEYS` keys
      holding the most, and if the rest (at least `min_pairs`) is better than random, that stands: demoting
      needs more than one key's evidence while the window holds others' pairs (a key alone decides).
    Pairs without a key name (a gateway without keys) share one entry, neither capped nor left out."""

    def __init__(self, *, window: int = 500, min_pairs: int = 50, rounds: int = 300, level: float = 0.95,
                 every: int = 1, key_share: float = 1.0, prompts_kept: int = 0, prompts_floor: int = 0,
                 promote_margin: float = PROMOTE_MARGIN) -> None:
        if not 1 <= min_pairs <= window:
            raise ValueError("need 1 ≤ min_pairs ≤ window")
        if not 0.0 <= promote_margin < 1.0 - RANDOM_APGR:
            raise ValueError("validation.promote_margin must be at least 0 and below 0.5")
        if not 0.0 < key_share <= 1.0:
            raise ValueError("refit_key_share must be above 0 and at most 1")
        self.window = window
        self.min_pairs = min_pairs
        self.rounds = rounds
        self.level = level
        self.every = max(1, every)
        self.key_cap = max(min_pairs, math.ceil(window * key_share))
        self._pairs: deque[JudgedPair] = deque()
        self._held: dict[str, int] = {}  # key name -> pairs it holds
        self._prompts = 0  # pairs holding a prompt
        self._key_prompts: Counter[str] = Counter()  # of them, each key's
        self._since = 0
        self._lock = threading.Lock()  # the shadow task adds; the dashboard and the CLI read
        self.latest = OnlineEstimate(0, "too-few-pairs", min_pairs=min_pairs, level=level)
        self.prompts_kept = prompts_kept  # only the newest this many pairs keep their prompt (`learned.adapt`)
        # and one key's at most this many of them (as `key_cap` of the window; at least the adaptation's min_pairs)
        self.prompt_cap = max(prompts_floor, math.ceil(prompts_kept * key_share))
        self.adaptation: dict[str, Any] | None = None  # the adapter's latest out-of-fold summary
        self.promote_margin = promote_margin
        self.demoted = False  # the verdict with hysteresis (`decide`), as `ShiftWindow.off`; kept by the route memory

    def _keep(self, pair: JudgedPair) -> None:
        """Append under the lock: a key at its cap drops its own oldest pair, else a full window its oldest."""
        key = pair.key
        gone: str | None = None
        out: JudgedPair | None = None
        if key and self._held.get(key, 0) >= self.key_cap:
            i = next(i for i, p in enumerate(self._pairs) if p.key == key)
            out = self._pairs[i]
            del self._pairs[i]
        elif len(self._pairs) >= self.window:
            out = self._pairs.popleft()
        if out is not None:
            gone = out.key
            if out.prompt:
                self._uncount_prompt(out.key)
        if gone is not None:
            if self._held[gone] == 1:
                del self._held[gone]
            else:
                self._held[gone] -= 1
        if pair.prompt:
            pair = replace(pair, prompt=kept_prompt(pair.prompt) if self.prompts_kept else "")
        self._pairs.append(pair)
        self._held[key] = self._held.get(key, 0) + 1
        if pair.prompt:
            self._prompts += 1
            self._key_prompts[key] += 1
            self._cap_prompts(key)

    def _cap_prompts(self, key: str) -> None:
        """Prompts held by the newest pairs only: at most `prompts_kept`, of which one key's at most `prompt_cap`.
        (Capped on the window alone, one key at its cap — its newest pair replacing its own oldest — held all of
        the newest `prompts_kept` pairs where the window is larger: the adaptation fitted on its prompts alone.)
        One pair was just added: at most one prompt over each cap, the oldest of its key's or of all."""
        if key and self._key_prompts[key] > self.prompt_cap:
            self._drop_oldest_prompt(key)
        if self._prompts > self.prompts_kept:
            self._drop_oldest_prompt(None)

    def _drop_oldest_prompt(self, key: str | None) -> None:
        left, at = self._prompts, -1
        for i, p in enumerate(reversed(self._pairs)):  # from the newest, as far as the oldest pair with a prompt
            if p.prompt:
                left -= 1
                if key is None or p.key == key:
                    at = i
                if not left:
                    break
        if at >= 0:
            i = len(self._pairs) - 1 - at
            p = self._pairs[i]
            self._pairs[i] = replace(p, prompt="")
            self._uncount_prompt(p.key)

    def _uncount_prompt(self, key: str) -> None:
        """One prompt of `key` less (a key holding none leaves the count: every key name ever seen stayed in it)."""
        self._prompts -= 1
        if self._key_prompts[key] <= 1:
            del self._key_prompts[key]
        else:
            self._key_prompts[key] -= 1

    def _estimate(self, pairs: list[JudgedPair]) -> OnlineEstimate:
        est = estimate(pairs, min_pairs=self.min_pairs, rounds=self.rounds, level=self.level, seed=len(pairs))
        too_wide = est.verdict == "too-few-pairs" and est.low is not None  # (enough pairs, one key's at odds)
        if est.verdict != "not-better-than-random" and not too_wide:
            return est
        # Bounded: at most LEFT_OUT_KEYS more estimates, only while the whole window says "not better" (or tells
        # nothing: one key's pairs at odds with the rest's widen the interval as they once pulled it down).
        held = Counter(p.key for p in pairs)
        if len(held) < 2:
            return est
        for key, count in Counter({k: c for k, c in held.items() if k}).most_common(LEFT_OUT_KEYS):
            if len(pairs) - count < self.min_pairs:
                continue
            rest = [p for p in pairs if p.key != key]
            alt = estimate(rest, min_pairs=self.min_pairs, rounds=self.rounds, level=self.level, seed=len(rest))
            if alt.verdict == "better-than-random":
                return replace(alt, left_out=count)
        return est

    def estimate_of(self, pairs: list[JudgedPair]) -> OnlineEstimate:
        """The estimate this validator would make of these pairs (the adapter's out-of-fold scores)."""
        return self._estimate(pairs)

    def set_adaptation(self, summary: dict[str, Any] | None) -> None:
        with self._lock:
            self.adaptation = summary
            self.latest = replace(self.latest, adapted=summary)

    def add(self, pair: JudgedPair) -> OnlineEstimate:
        with self._lock:
            self._keep(pair)
            self._since += 1
            pairs = list(self._pairs)
            due = self._since >= self.every or len(pairs) <= self.min_pairs
        if due:  # bounded work: at most `window` pairs × `rounds` resamples (× 1 + LEFT_OUT_KEYS), in the shadow task
            est = self._estimate(pairs)
            with self._lock:
                self.latest, self._since = replace(est, adapted=self.adaptation), 0
        return self.latest

    @property
    def capacity(self) -> int:
        return self.window

    def pairs(self) -> list[JudgedPair]:
        with self._lock:
            return list(self._pairs)

    def restore(self, pairs: list[JudgedPair], demoted: bool | None = None) -> OnlineEstimate:
        """Start again from saved pairs (oldest first), estimated once, and the saved verdict (the hysteresis's
        state; None keeps the current one: the privacy boundary's re-cleaning of the same pairs)."""
        with self._lock:
            if demoted is not None:
                self.demoted = demoted
            self._pairs.clear()
            self._held.clear()
            self._prompts = 0
            self._key_prompts.clear()
            for p in pairs:  # each added again under its key, so every key's cap holds
                self._keep(p)
            self._since = 0
            held = list(self._pairs)
        est = self._estimate(held)
        with self._lock:
            self.latest = replace(est, adapted=self.adaptation)
        return self.latest

    def check(self) -> tuple[bool, str] | None:
        """For `RouteGuard`: None while there is too little evidence, else (demote?, why)."""
        est = self.latest
        return self.decide(est.verdict, est.low, est.sentence())

    def decide(self, verdict: str, low: float | None, why: str) -> tuple[bool, str] | None:
        """The guard's answer from a verdict and its interval's lower end, with hysteresis (as shift's window): a
        route is demoted when its lower end is not above random, and once demoted, re-promoted only when it clears
        random by `promote_margin`. None (no opinion: too few pairs, undefined) clears the state, as the guard then
        re-promotes. (`LiveAdapter.check` passes the adapted verdict here: one state for the route.)"""
        if verdict not in ("better-than-random", "not-better-than-random") or low is None:
            with self._lock:
                self.demoted = False
            return None
        bar = RANDOM_APGR + self.promote_margin
        with self._lock:
            was = self.demoted
            if verdict == "not-better-than-random":
                self.demoted = True
            elif was and low > bar:
                self.demoted = False
            demoted = self.demoted
        if demoted and verdict == "better-than-random":
            why += (f"; still demoted: its lower end {low:.3f} has not cleared random by the promote margin "
                    f"{self.promote_margin:g} (re-promoted above {bar:.3f})")
        elif was and not demoted:
            why += (f"; its lower end {low:.3f} clears random by more than the promote margin {self.promote_margin:g} "
                    f"(above {bar:.3f})")
        return demoted, why


def pair_from_shadow(shadow: dict[str, Any]) -> JudgedPair | None:
    """A judged pair from a ledger `shadow` record's pair, or None when it is not judged on both sides."""
    s, w = shadow.get("strong"), shadow.get("weak")
    if not (isinstance(s, dict) and isinstance(w, dict)):
        return None
    if s.get("ok") is False or w.get("ok") is False:
        return None  # a failed shadow call says nothing about its model
    try:
        so, wo = s.get("outcome"), w.get("outcome")
        score, thr = float(shadow["score"]), float(shadow["threshold"])
        if so is None or wo is None or score != score or thr != thr:
            return None
        key = shadow.get("key")  # written since session 22 (older pairs count as a gateway without keys')
        prompt = str(shadow.get("prompt") or "")
        return JudgedPair(len(prompt), score, thr, float(so), float(wo), key[:200] if isinstance(key, str) else "",
                          prompt[:PROMPT_CHARS])
    except (KeyError, TypeError, ValueError):
        return None


def ledger_pairs(ledger: Any, route: str | None = None) -> dict[str, list[JudgedPair]]:
    """Judged shadow pairs per learned route, oldest first."""
    out: dict[str, list[JudgedPair]] = {}
    for rec in ledger.scan(kind="shadow", route=route):  # in time order
        p = pair_from_shadow(rec.shadow or {})
        if p is not None:
            out.setdefault(rec.route, []).append(p)
    return out


def ledger_estimates(ledger: Any, *, route: str | None = None, window: int | None = None, min_pairs: int = 50,
                     rounds: int = 300) -> dict[str, OnlineEstimate]:
    """Each learned route's online estimate from the ledger (its last `window` judged pairs when given)."""
    return {name: estimate(pairs[-window:] if window else pairs, min_pairs=min_pairs, rounds=rounds)
            for name, pairs in ledger_pairs(ledger, route).items()}


def configured_estimates(cfg: Any, ledger: Any, *, route: str | None = None) -> dict[str, OnlineEstimate]:
    """Each learned route's estimate from the ledger, over the window its `validation` config sets, each pair
    under its gateway key as the live route counts it (`OnlineValidator`: one key's pairs at most its share, a
    "not better than random" taken again without the largest keys): the same figures the live route acts on;
    learned routes without judged pairs get "too few pairs". (All keys' pairs together, as before session 22,
    showed a route one key had flooded as not better than random while the live route, rightly, kept it.)"""
    out = {}
    for name, pc in cfg.routes.items():
        if getattr(pc, "policy", None) != "learned" or route not in (None, name):
            continue
        vc = getattr(pc, "validation", None)
        window, min_pairs, rounds = (vc.window, vc.min_pairs, vc.rounds) if vc is not None else (500, 50, 300)
        level = vc.level if vc is not None else 0.95
        pairs = ledger_pairs(ledger, route=name).get(name) if ledger is not None else None
        if not pairs:
            out[name] = OnlineEstimate(0, "too-few-pairs", min_pairs=min_pairs)
            continue
        ac = getattr(pc, "adapt", None)
        validator = OnlineValidator(window=window, min_pairs=min(min_pairs, window), rounds=rounds, level=level,
                                    key_share=float(getattr(pc, "refit_key_share", 1.0)),
                                    prompts_kept=ac.window if ac is not None else 0,
                                    prompts_floor=ac.min_pairs if ac is not None else 0)
        out[name] = validator.restore(pairs)
        if ac is not None and pc.target_share is not None:  # the adaptation the live route fits on these pairs
            from tierwise.routers.adapt import LiveAdapter

            adapter = LiveAdapter(validator, pc.target_share, min_pairs=ac.min_pairs, prior_weight=ac.prior_weight,
                                  window=ac.window)
            if adapter.refit():
                out[name] = validator.latest
    return out


def estimate_rows(estimates: Iterable[tuple[str, OnlineEstimate]]) -> list[str]:
    """Plain-text lines for the CLI."""
    return [f"  {name}: {est.sentence()}" for name, est in estimates]
