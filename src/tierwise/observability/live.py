"""The dashboard's live data: the newest finished requests and per-second aggregates, in memory.

`add` runs at the end of each request and does O(1) work (an append and a few additions); the
dashboard's stream and charts read from here on their own schedule, so their cost does not grow
with the request rate (the stream is sampled, the charts are aggregated per second).
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable
from typing import Any

from tierwise.observability.vocab import reason_label

WINDOW_S = 900  # seconds of per-second aggregates kept
OWN_ROWS = 50  # each key's newest requests kept at hand: what `/dashboard/api/recent` shows a gateway key


class Second:
    __slots__ = ("t", "n", "errors", "cost", "ref_cost", "learning", "latency_ms", "local", "remote", "routes",
                 "decisions")

    def __init__(self, t: int) -> None:
        self.t = t
        self.n = self.errors = self.local = self.remote = 0
        self.cost = self.ref_cost = self.latency_ms = 0.0
        self.learning = 0.0  # what shadow runs and judge calls cost (not requests; the saving is net of it)
        self.routes: dict[str, int] = {}
        self.decisions: dict[str, dict[str, int]] = {}  # route -> decision reason -> count

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "n": self.n, "errors": self.errors, "cost": self.cost, "ref_cost": self.ref_cost,
                "learning_cost": self.learning, "latency_ms": self.latency_ms / self.n if self.n else None, "local": self.local,
                "remote": self.remote, "routes": self.routes, "decisions": self.decisions}


def row(rec: Any, seq: int) -> dict[str, Any]:
    """What the live stream shows for one request (no content, no free text but the route and names)."""
    a = rec.answered
    return {"seq": seq, "id": rec.request_id, "t": rec.wall, "route": rec.route, "api": rec.api,
            "stream": rec.stream, "status": rec.status, "error_type": rec.error_type,
            "latency_ms": round(rec.latency_ms, 2), "ttft_ms": round(rec.ttft_ms, 2) if rec.ttft_ms else None,
            "model": a.name if a is not None else None, "locality": a.locality if a is not None else None,
            "cost": rec.cost, "reference_cost": rec.reference_cost, "summary": rec.trace.header_summary()[:500]}


class LiveFeed:
    def __init__(self, recent: int) -> None:
        self.recent: collections.deque[tuple[int, Any]] = collections.deque(maxlen=recent)
        self.by_id: dict[str, Any] = {}
        # key name -> its newest (seq, record) among `recent` (none that left it): a gateway key's own rows without a
        # walk of `recent`
        # (a key with none among 100,000 walked them all, 7.2 ms a call, any key, as often as it asked; session 36)
        self.by_key: dict[str | None, collections.deque[tuple[int, Any]]] = {}
        self.seconds: collections.deque[Second] = collections.deque(maxlen=WINDOW_S)
        self.seq = 0
        self.totals = {"n": 0, "errors": 0, "cost": 0.0, "ref_cost": 0.0, "learning_cost": 0.0}

    def _second(self, now: int) -> Second:
        sec = self.seconds[-1] if self.seconds else None
        if sec is None or sec.t != now:
            sec = Second(now)
            self.seconds.append(sec)
        return sec

    def add_learning(self, cost: float, wall: float) -> None:
        """A shadow run's or an evaluation's cost: learning spend, which `tierwise report` also nets out."""
        self._second(int(wall)).learning += cost
        self.totals["learning_cost"] += cost

    def add(self, rec: Any) -> None:
        self.seq += 1
        if len(self.recent) == self.recent.maxlen:
            old_seq, old = self.recent[0]
            self.by_id.pop(old.request_id, None)
            own = self.by_key.get(old.key)
            # its oldest row leaves with it (a key's rows leave `recent` in the order they came): kept until its
            # newest left, the index held up to OWN_ROWS requests per key, past `recent`'s bound (review36d)
            if own is not None and own[0][0] == old_seq:
                own.popleft()
                if not own:
                    del self.by_key[old.key]
        self.recent.append((self.seq, rec))
        self.by_id[rec.request_id] = rec
        own = self.by_key.get(rec.key)
        if own is None:
            own = self.by_key[rec.key] = collections.deque(maxlen=OWN_ROWS)
        own.append((self.seq, rec))
        sec = self._second(int(rec.wall))
        sec.n += 1
        err = rec.status >= 400
        sec.errors += err
        c = rec.cost
        sec.cost += c
        r = rec.reference_cost or 0.0
        sec.ref_cost += r
        sec.latency_ms += rec.latency_ms
        a = rec.answered
        if a is not None:
            if a.locality == "local":
                sec.local += 1
            else:
                sec.remote += 1
        sec.routes[rec.route] = sec.routes.get(rec.route, 0) + 1
        for st in rec.steps:
            if st.kind == "decision":
                d = sec.decisions.setdefault(rec.route, {})
                # the privacy boundary's step (sent, redacted, refused) is no choice of the route's policy
                label = "privacy" if st.name == "privacy" else reason_label(st.reason)
                d[label] = d.get(label, 0) + 1
        t = self.totals
        t["n"] += 1
        t["errors"] += err
        t["cost"] += c
        t["ref_cost"] += r

    def since(self, seq: int, limit: int, visible: Callable[[str | None], bool] | None = None,
              ) -> tuple[int, list[dict[str, Any]], int]:
        """Rows newer than `seq` (at most `limit`, evenly sampled), the newest seq, and how many were skipped.
        With `visible`, only the requests of the keys it accepts (by key name): a client's own."""
        newest = self.seq
        if newest <= seq:
            return newest, [], 0
        # Sequence numbers are consecutive: the new rows are the last (newest - seq) of the deque.
        n_new = min(newest - seq, len(self.recent))
        items = list(itertools.islice(reversed(self.recent), n_new))
        items.reverse()
        if visible is not None:
            items = [it for it in items if visible(it[1].key)]
        skipped = 0
        if len(items) > limit:
            step = len(items) / limit
            picked = [items[int(i * step)] for i in range(limit)]
            skipped = len(items) - limit
            items = picked
        return newest, [row(r, s) for s, r in items], skipped

    def newest(self, limit: int, key_name: str | None) -> list[dict[str, Any]]:
        """The newest `limit` (at most OWN_ROWS) rows of the requests made with the key named `key_name` that are
        still among `recent`, oldest first; none for no key. From the key's own index: walking `recent` back
        until `limit` were found cost 7.2 ms of the event loop at `recent: 100,000` for a key with none of them
        (session 35, obs6), and building a row for each of them before that ~0.65 s (session 30)."""
        own = self.by_key.get(key_name) if key_name else None
        if not own or not self.recent:
            return []
        first = self.recent[0][0]
        picked = [it for it in list(own)[-limit:] if it[0] >= first]
        return [row(r, s) for s, r in picked]

    def series(self, seconds: int = 300) -> list[dict[str, Any]]:
        cut = int(time.time()) - seconds
        return [s.to_dict() for s in list(self.seconds) if s.t > cut]

    def trace(self, request_id: str, visible: Callable[[str | None], bool] | None = None) -> dict[str, Any] | None:
        rec = self.by_id.get(request_id)
        if rec is None or (visible is not None and not visible(rec.key)):
            return None
        out = rec.trace.to_dict()
        out.update(row(rec, 0))
        out.pop("seq", None)
        return out
