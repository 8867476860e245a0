"""Live statistics of one deployment in this process: latency and time-to-first-token EWMAs, the
median of the last few latencies, an error-rate EWMA, calls in flight and a queue depth.

The deployment feeds them on every call (`begin`, then exactly one of `ok`, `failed`, `end`);
each is O(1) — a few float operations and a bounded deque append — so they can sit on the
request path. The blackboard (tierwise.dispatch.blackboard) reads them, merges them with the
other replicas' and publishes them; nothing here does I/O.
"""

from __future__ import annotations

import collections
import time
from typing import Any

# The statistics a policy can read, and what each one means.
NAMES: dict[str, str] = {
    "latency_ms": "EWMA of the whole call's latency (ms)",
    "latency_p50_ms": "median latency of the last `window` calls (ms)",
    "ttft_ms": "EWMA of the time to the first token (ms; a whole answer's latency when not streamed)",
    "error_rate": "EWMA of failed calls (0..1; only failures that count against the deployment)",
    "in_flight": "calls under way now (summed over replicas)",
    "queue_depth": "tasks waiting in the capability queues this model serves (set by workers; the largest report)",
    "breaker_open": "1 while the circuit breaker is open or half-open, else 0",
}


class LiveStats:
    __slots__ = ("alpha", "latency", "ttft", "errors", "recent", "count", "in_flight", "queue_depth", "last_at",
                 "breaker", "_p50", "_p50_at")

    def __init__(self, alpha: float = 0.3, window: int = 20, breaker: Any = None) -> None:
        self.alpha = alpha
        self.latency: float | None = None
        self.ttft: float | None = None
        self.errors: float | None = None
        self.recent: collections.deque[float] = collections.deque(maxlen=window)
        self.count = 0  # calls finished (ok or failed) since start
        self.in_flight = 0
        self.queue_depth = 0
        self.last_at = 0.0  # time.monotonic() of the last finished call
        self.breaker = breaker
        self._p50: float | None = None
        self._p50_at = -1  # `count` when the median was last computed: recomputed only after a new sample

    # ------------------------------------------------------------------ writes (the request path)

    def begin(self) -> None:
        self.in_flight += 1

    def end(self) -> None:
        """A call that ended without saying anything about the deployment (cancelled, the request's fault)."""
        if self.in_flight > 0:
            self.in_flight -= 1

    def ok(self, latency_ms: float, ttft_ms: float | None) -> None:
        self._sample(latency_ms, ttft_ms, 0.0)

    def failed(self, latency_ms: float) -> None:
        self._sample(latency_ms, None, 1.0)

    def _sample(self, latency_ms: float, ttft_ms: float | None, error: float) -> None:
        if self.in_flight > 0:
            self.in_flight -= 1
        a = self.alpha
        # A failure's latency is how long it took to fail (a fast refusal or a timeout): it is part
        # of what a caller waits, so it moves the latency statistics too.
        self.latency = latency_ms if self.latency is None else self.latency + a * (latency_ms - self.latency)
        t = latency_ms if ttft_ms is None else ttft_ms
        self.ttft = t if self.ttft is None else self.ttft + a * (t - self.ttft)
        self.errors = error if self.errors is None else self.errors + a * (error - self.errors)
        self.recent.append(latency_ms)
        self.count += 1
        self.last_at = time.monotonic()

    # ------------------------------------------------------------------ reads

    @property
    def samples(self) -> int:
        """The recent calls behind these statistics (at most `window`)."""
        return len(self.recent)

    def weight(self, now: float, half_life: float) -> float:
        """How much this replica's view weighs when merged with others': its recent calls, halved
        for every `half_life` seconds since the last one — a replica that stopped calling a model
        an hour ago must not outvote one that calls it now."""
        n = len(self.recent)
        if not n:
            return 0.0
        age = now - self.last_at
        return n * 0.5 ** (age / half_life) if age > 0 else float(n)

    def p50(self) -> float | None:
        if self._p50_at != self.count:
            self._p50_at = self.count
            s = sorted(self.recent)
            n = len(s)
            self._p50 = None if not n else (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2)
        return self._p50

    def breaker_open(self) -> float:
        b = self.breaker
        return 0.0 if b is None or b.opened_at is None else 1.0

    def value(self, name: str) -> float | None:
        """One statistic by name (see NAMES); None when there is no sample yet."""
        if name == "latency_ms":
            return self.latency
        if name == "latency_p50_ms":
            return self.p50()
        if name == "ttft_ms":
            return self.ttft
        if name == "error_rate":
            return self.errors
        if name == "in_flight":
            return float(self.in_flight)
        if name == "queue_depth":
            return float(self.queue_depth)
        if name == "breaker_open":
            return self.breaker_open()
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "count": self.count, "latency_ms": self.latency,
                "latency_p50_ms": self.p50(), "ttft_ms": self.ttft, "error_rate": self.errors,
                "in_flight": self.in_flight, "queue_depth": self.queue_depth,
                "breaker": self.breaker.state if self.breaker is not None else None}
