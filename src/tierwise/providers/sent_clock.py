"""When a call to an upstream was truly sent: the moment the provider's pool of connections handed it one. A call
waits in that pool while `providers.<p>.max_connections` calls are in flight (up to `timeouts.pool`); until it has
a connection the upstream has nothing, writes nothing and bills nothing. The output a cut call can have written
unseen (usage_bounds.unseen_output, 1,000 tokens a second) counts from here. Before review36c it counted from before
the wait: a client that gave up on a call queued 2 s behind other calls was billed 2,000 output tokens of a request
that never left the gateway (tests/budgets/test_unseen_output_pool_wait.py)."""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

import aiohttp

# The call in progress in this task: [when it began (its t0), when it got a connection (0: not known, -1: waiting
# for one, never got it)]. A list, so that the connector's mark reaches the caller from any context copied from it.
_CALL: ContextVar[list[float]] = ContextVar("tierwise_upstream_call")


def start() -> float:
    """A call begins (time.perf_counter): its t0, and the mark the connector fills in."""
    t0 = time.perf_counter()
    _CALL.set([t0, 0.0])
    return t0


def sent_since(t0: float) -> float | None:
    """When the call begun at `t0` got its connection; None if it waited for one and never got it (nothing sent);
    `t0` when not known (no mark of this call: another session's connector, another task)."""
    c = _CALL.get(None)
    if c is None or c[0] != t0 or c[1] == 0.0:
        return t0
    return None if c[1] < 0 else c[1]


class StampingConnector(aiohttp.TCPConnector):
    """A TCPConnector that marks when the call in progress got its connection (from the pool or new)."""

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        c = _CALL.get(None)
        if c is not None:
            c[1] = -1.0
        conn = await super().connect(req, traces, timeout)
        if c is not None:
            c[1] = time.perf_counter()
        return conn
