"""Identifiers for requests, responses and runs: unique across processes, cheap to make.

A random per-process prefix plus a counter: no system call per id (on sandboxed kernels
`os.urandom` per request showed up as several percent of a streaming profile). After a
fork the child draws a new prefix, so parent and child never hand out the same id.
"""

from __future__ import annotations

import itertools
import os

_prefix = os.urandom(6).hex()
_counter = itertools.count(1)


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(6).hex()
    _counter = itertools.count(1)


os.register_at_fork(after_in_child=_reseed)


def new_id(kind: str) -> str:
    """`kind` followed by 24 hex digits, e.g. `new_id("msg_")` -> `msg_3f9a1c…`."""
    return f"{kind}{_prefix}{next(_counter):012x}"
