"""A busy machine on demand: `pytest -p tests.jitter` stalls event-loop iterations at random (seeded).

Not part of the suite's normal run. On a loaded machine a thread is sometimes not scheduled for a while: the
gateway's loop reads an upstream's events only after several have arrived, a request reaches the gateway a
moment later than the test expected, a double's pause between two writes is over before anyone read the first.
Tests that hold only when everything runs at once fail under this plugin far more often than on a quiet machine,
so a race can be seen (and its fix checked) in a few runs instead of hundreds of CI runs.

TIERWISE_JITTER="P,S[,SEED]": each iteration of every asyncio loop (the gateway's, the doubles', the client
helpers') sleeps S seconds with probability P (default 0.05,0.05). `time.sleep` lets the other threads run
meanwhile, as a preempted thread would.
"""

from __future__ import annotations

import asyncio.base_events
import os
import random
import threading
import time
from typing import Any

_spec = os.environ.get("TIERWISE_JITTER", "0.05,0.05").split(",")
P, S = float(_spec[0]), float(_spec[1])
_rng = random.Random(int(_spec[2]) if len(_spec) > 2 else 27)
_lock = threading.Lock()
_original = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]


def _stalled_run_once(self: Any) -> None:
    with _lock:
        stall = _rng.random() < P
    if stall:
        time.sleep(S)
    _original(self)


asyncio.base_events.BaseEventLoop._run_once = _stalled_run_once  # type: ignore[attr-defined]
