"""A route's background evaluations (shadow runs, judge calls), bounded in flight, route-wide and per gateway key.

Evaluations are work a client's request starts and no budget pays for: a judge call on the frontier, a shadow
run of the frontier tier for an answer the local tier gave. Without a bound, one key sending cheap (local)
requests started as many frontier calls as it sent requests, all at once; with a route-wide bound only, one key
held every place and the other clients' evaluations were dropped (their evidence lost). So at most `limit` are in
flight, and at most `per_key` of them started by one gateway key; beyond either the evaluation is not started and
counted as dropped (the request is unaffected). Work of no key (a gateway without keys) has only the route's
bound: there are no clients to tell apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

KEY_SHARE = 0.5  # of the route's places, the most one gateway key's evaluations hold


class BackgroundWork:
    def __init__(self, limit: int, key_share: float = KEY_SHARE) -> None:
        self.limit = limit
        self.per_key = max(1, int(limit * key_share))
        self.tasks: set[asyncio.Task[None]] = set()  # also the route's `_background` (drain, tests)
        self.by_key: dict[str, int] = {}  # places held per key name (only keys holding some)
        self.dropped = 0

    def room_for(self, key: str) -> bool:
        """Whether an evaluation started by `key` ("" for none) may start now."""
        return len(self.tasks) < self.limit and (not key or self.by_key.get(key, 0) < self.per_key)

    def start(self, coro: Coroutine[Any, Any, None], key: str = "") -> bool:
        """Run `coro` in the background when there is room (True); else close it, count a drop (False)."""
        if not self.room_for(key):
            coro.close()
            self.dropped += 1
            return False
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        if key:
            self.by_key[key] = self.by_key.get(key, 0) + 1
        task.add_done_callback(lambda t: self._done(t, key))
        return True

    def track(self, task: asyncio.Task[None]) -> None:
        """Background work of the route itself (a refit), outside the bounds: drained at shutdown all the same."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _done(self, task: asyncio.Task[None], key: str) -> None:
        self.tasks.discard(task)
        if key:
            left = self.by_key.get(key, 1) - 1
            if left > 0:
                self.by_key[key] = left
            else:
                self.by_key.pop(key, None)
