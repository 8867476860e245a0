"""How much of a task type's evidence one gateway key may give (`boundary.key_share`, `key_window`,
`key_idle_s`), for the learning loop (docs/learning.md, "One client's share of the evidence").

The boundary of a task type serves every client of the route, and a client chooses its prompts and its
ratings. Per task type this keeps, by key name (the names the ledger keeps as `extra.key`, never a key
itself; "" for a gateway without keys):

- the type's current clients: the keys that sent a request of the type within `key_idle_s` seconds, and
  those among its last `key_window` offers of evidence. Requests count, not only offers: a flood of one
  key's offers would otherwise push every other client out of the offers and leave the flooder alone;
- the keys of its last `key_window` offers and of the pieces of evidence it let count, for `counts_from`
  (share and spacing of one key's pieces: while other clients are current, a key's next piece waits for
  theirs, however many offers it makes; a piece takes its place when it is let count, not when its verdict
  arrives, so a burst of concurrent requests is not let through before any of their verdicts is in);
- each key's part of the evidence the type's posterior holds (discounted as the posterior is), for
  `decides_alone`: a boundary move needs evidence from at least min(2, clients) keys — in the posterior, and
  for a move by the change-point test in the run of verdicts that tripped it — so one key is never the sole
  evidence of a move while the type has other current clients.

All of it is saved with the loop's state (`dump`/`load`), bounded: a restart must not let one key flood a
type again.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from tierwise.learning.boundary import BoundarySettings

TURNED_AWAY = "\x00"  # in a type's evidence window: an offer that did not count (it ages the window)
MAX_CLIENTS = 256  # keys remembered per task type (the least recently seen is forgotten first)
MAX_NAME = 200  # characters of a key name kept (names come from the config)
TINY = 1e-3  # a key's part of the posterior below this is forgotten
GAP_KEYS = 8  # keys of the latest counted pieces kept for the spacing rule (its gap is at most 1/key_share - 1)


class KeyShare:
    def __init__(self, settings: BoundarySettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.evidence_by: dict[str, deque[str]] = {}  # type -> keys of the latest pieces let count (and turn-aways)
        self.arrived_by: dict[str, deque[str]] = {}  # type -> keys of its latest evidence in the posterior
        self.asked_by: dict[str, deque[str]] = {}  # type -> keys of its latest offers of evidence
        self.last_seen: dict[str, OrderedDict[str, float]] = {}  # type -> key -> time of its latest request
        self.mass: dict[str, dict[str, float]] = {}  # type -> key -> its part of the posterior's evidence
        self.last_by: dict[str, deque[str]] = {}  # type -> keys of its latest counted pieces (turn-aways skipped)

    # ------------------------------------------------------------------ who asks

    def saw(self, task_type: str, key: str) -> None:
        """A request of `task_type` from the key named `key`: the key is one of the type's current clients."""
        if not key:
            return
        seen = self.last_seen.get(task_type)
        if seen is None:
            seen = self.last_seen[task_type] = OrderedDict()
        seen[key[:MAX_NAME]] = self.clock()
        seen.move_to_end(key[:MAX_NAME])
        while len(seen) > MAX_CLIENTS:
            seen.popitem(last=False)

    def clients(self, task_type: str) -> set[str]:
        """The type's current clients: keys with a request within `key_idle_s`, and those among its last offers."""
        out = set(self.asked_by.get(task_type) or ())
        seen = self.last_seen.get(task_type)
        if seen:
            since = self.clock() - self.settings.key_idle_s
            out.update(k for k, t in seen.items() if t >= since)
        out.discard("")
        return out

    def counts_from(self, task_type: str, key: str) -> bool:
        """Whether a piece of evidence on `task_type` offered by a request of the gateway key named `key` may count
        (be judged, or a rating or verifier verdict enter the posterior). The type's last `key_window` offers are
        remembered by key. A key alone among the type's current clients (or a gateway without keys) always
        counts. Otherwise a key may hold at most max(`key_share`, 1/clients) of the type's latest evidence —
        where an offer turned away also takes a place, so a key that gave much while it was alone is not shut out
        for good — and may not give two pieces within min(1/`key_share`, clients) − 1 pieces of each other, however
        many offers it makes in between: a run of one key's rejections would trip the change-point test, which
        reads runs, not shares. Two clients so alternate; a client that stops sending requests of the type leaves
        the others alone once it has been idle `key_idle_s` and `key_window` offers have passed."""
        if not key:
            return True
        key = key[:MAX_NAME]
        asked = self.asked_by.get(task_type)
        if asked is None:
            asked = self.asked_by[task_type] = deque(maxlen=self.settings.key_window)
        asked.append(key)
        clients = len(self.clients(task_type) | {key})
        by = self.evidence_by.get(task_type)
        if by is None:
            by = self.evidence_by[task_type] = deque(maxlen=self.settings.key_window)
        last = self.last_by.get(task_type)
        if last is None:
            last = self.last_by[task_type] = deque(maxlen=GAP_KEYS)
        share = self.settings.key_share
        gap = min(round(1.0 / share), clients) - 1
        if clients == 1 or not by or (by.count(key) < max(share, 1.0 / clients) * len(by) + 1
                                      and key not in list(last)[len(last) - gap:]):
            by.append(key)
            last.append(key)
            return True
        by.append(TURNED_AWAY)
        return False

    # ------------------------------------------------------------------ what counted

    def note(self, task_type: str, key: str) -> None:
        """A piece of evidence on `task_type` from `key` entered the posterior: it takes its part (the earlier parts
        discounted as the posterior's evidence is)."""
        key = key[:MAX_NAME]
        arrived = self.arrived_by.get(task_type)
        if arrived is None:
            arrived = self.arrived_by[task_type] = deque(maxlen=self.settings.key_window)
        arrived.append(key)
        parts = self.mass.setdefault(task_type, {})
        d = self.settings.discount
        for k in list(parts):
            parts[k] *= d
            if parts[k] < TINY:
                del parts[k]
        parts[key] = parts.get(key, 0.0) + 1.0
        if len(parts) > MAX_CLIENTS:  # the smallest parts go to the unattributed share ("")
            for k, v in sorted(parts.items(), key=lambda kv: kv[1])[:len(parts) - MAX_CLIENTS]:
                if k:
                    del parts[k]
                    parts[""] = parts.get("", 0.0) + v

    def rescale(self, task_type: str, evidence: float) -> None:
        """The posterior kept only `evidence` pieces' worth (a change-point test fired): the parts shrink with it."""
        parts = self.mass.get(task_type)
        total = sum(parts.values()) if parts else 0.0
        if parts and total > 0.0:
            f = max(0.0, evidence) / total
            self.mass[task_type] = {k: v * f for k, v in parts.items() if v * f >= TINY}

    def decides_alone(self, task_type: str, why: str, run: int) -> bool:
        """Whether a move of `task_type` (`why`: evidence, below-target, drift) would rest on one key's evidence
        alone while the type has other current clients: the keys holding a part of its posterior, or for `drift`
        the keys of the `run` verdicts that tripped the change-point test (a run of one client's rejections is
        not a change of the model). A gateway without keys, or a key alone, decides."""
        clients = self.clients(task_type)
        if len(clients) < 2:
            return False
        if why == "drift":
            return len(set(list(self.arrived_by.get(task_type) or ())[-max(1, run):])) < 2
        return len([k for k, v in (self.mass.get(task_type) or {}).items() if v >= TINY]) < 2

    # ------------------------------------------------------------------ persistence

    def dump(self) -> dict[str, Any]:
        types = {*self.evidence_by, *self.asked_by, *self.last_seen, *self.mass, *self.last_by, *self.arrived_by}
        return {t: {"evidence": list(self.evidence_by.get(t) or ()), "asked": list(self.asked_by.get(t) or ()),
                    "last": list(self.last_by.get(t) or ()), "arrived": list(self.arrived_by.get(t) or ()),
                    "seen": dict(self.last_seen.get(t) or {}), "mass": dict(self.mass.get(t) or {})}
                for t in types}

    def load(self, data: Any, unattributed: dict[str, float] | None = None) -> None:
        """Restore what `dump` gave (what is malformed is skipped, names are cut to `MAX_NAME`, lists to
        `key_window`). `unattributed`: per type, the posterior's evidence saved before its parts were (it counts as
        the gateway's own, "")."""
        n = self.settings.key_window
        if isinstance(data, dict):
            for t, raw in data.items():
                if not isinstance(raw, dict):
                    continue
                t = str(t)
                for field, into, most in (("evidence", self.evidence_by, n), ("asked", self.asked_by, n),
                                          ("last", self.last_by, GAP_KEYS), ("arrived", self.arrived_by, n)):
                    keys = raw.get(field)
                    if isinstance(keys, list):
                        into[t] = deque((k[:MAX_NAME] for k in keys[-most:] if isinstance(k, str)), maxlen=most)
                seen = raw.get("seen")
                if isinstance(seen, dict):
                    ok = sorted(((str(k)[:MAX_NAME], float(v)) for k, v in seen.items() if _finite(v)),
                                key=lambda kv: kv[1])[-MAX_CLIENTS:]
                    self.last_seen[t] = OrderedDict(ok)
                mass = raw.get("mass")
                if isinstance(mass, dict):
                    parts = {str(k)[:MAX_NAME]: float(v) for k, v in mass.items() if _finite(v) and v >= TINY}
                    self.mass[t] = dict(sorted(parts.items(), key=lambda kv: -kv[1])[:MAX_CLIENTS])
        for t, evidence in (unattributed or {}).items():
            if t not in self.mass and evidence >= TINY:
                self.mass[t] = {"": evidence}


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
