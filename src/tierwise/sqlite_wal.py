"""Opening one SQLite file from several processes at once (`tierwise serve --workers N`, parallel runs).

SQLite answers "database is locked" at once, not after the connection's busy timeout, when a second process
switches a new database to WAL (or creates its schema) while the first is doing it. `retry_locked` runs such a
set-up step again after a short jittered pause, for up to ~10 s, before that is an error.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
ATTEMPTS = 40


def retry_locked(step: Callable[[], T]) -> T:
    """`step()`, tried again while SQLite says the database is locked or busy."""
    for attempt in range(ATTEMPTS):
        try:
            return step()
        except sqlite3.OperationalError as e:
            if ("locked" not in str(e) and "busy" not in str(e)) or attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.05 + 0.2 * random.random())  # jittered: the racers do not meet again
    raise AssertionError("unreachable")
