"""A busy machine on demand: `pytest -p tests.jitter` stalls event-loop iterations at random (seeded).

Not part of the suite's normal run. On a loaded machine a thread is sometimes not scheduled for a while: the
gateway's loop reads an upstream's events only after several have arrived, a request reaches the gateway a
moment later than the test expected, a double's pause between two writes is over before anyone read the first.
Tests that hold only when everything runs at once fail under this plugin far more often than on a quiet machine,
so a race can be seen (and its fix checked) in a few runs instead of hundreds of CI runs.

TIERWISE_JITTER="P,S[,SEED]": each iteration of every asyncio loop but the upstream doubles' (the gateway's, the
client helpers') sleeps S seconds with probability P (default 0.05,0.05). `time.sleep` lets the other threads run
meanwhile, as a preempted thread would. The doubles keep their pace, as an upstream on another machine does:
stalled alike, they slowed down with the gateway and the races stayed hidden (TIERWISE_JITTER_DOUBLES=1 stalls
them too).
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


_DOUBLES_TOO = os.environ.get("TIERWISE_JITTER_DOUBLES") == "1"


def _stalled_run_once(self: Any) -> None:
    if not _DOUBLES_TOO and threading.current_thread().name.endswith("Double-loop"):  # tests/doubles/base.py
        _original(self)
        return
    with _lock:
        stall = _rng.random() < P
    if stall:
        time.sleep(S)
    _original(self)


asyncio.base_events.BaseEventLoop._run_once = _stalled_run_once  # type: ignore[attr-defined]
