"""W3C trace context: read an incoming `traceparent`, make ids, and derive each upstream call's span id.

A request's ids are made once (lazily, by whoever needs them first: the upstream call that
passes them on, or the end of the request) and kept in `ctx.notes`. A call step's span id is
derived from the server span id and the step's index, so nothing has to be stored per call.
"""

from __future__ import annotations

import random
import re
from typing import Any, NamedTuple

NOTE = "otel"
_TP = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
# Seeded from the OS once; ids are identifiers, not secrets (as in the OTel SDK), and a
# SystemRandom draw costs a system call per id.
_rand = random.Random()


class TraceIds(NamedTuple):
    trace_id: int
    span_id: int  # the server span
    parent_id: int  # the client's span (0: none)
    sampled: bool


def parse(header: str | None) -> tuple[int, int, bool] | None:
    if not header or len(header) > 512:
        return None
    m = _TP.match(header.strip().lower())
    if m is None:
        return None
    tid, sid = int(m.group(1), 16), int(m.group(2), 16)
    if tid == 0 or sid == 0:
        return None
    return tid, sid, bool(int(m.group(3), 16) & 1)


_new = tuple.__new__  # a NamedTuple's own constructor costs ~3x more (it runs per request)


def new_ids(header: str | None, ratio: float) -> TraceIds:
    span = _rand.getrandbits(64) or 1
    if header:
        parent = parse(header)
        if parent is not None:  # parent-based sampling: the caller decided
            return _new(TraceIds, (parent[0], span, parent[1], parent[2]))
    tid = _rand.getrandbits(128) or 1
    # Ratio sampling by trace id, as OTel's TraceIdRatioBased does (lower 64 bits).
    return _new(TraceIds, (tid, span, 0, ratio >= 1.0 or (tid & _MASK) < ratio * (1 << 64)))


def ids_for(ctx: Any, headers: dict[str, str], ratio: float) -> TraceIds:
    ids: TraceIds | None = ctx.notes.get(NOTE)
    if ids is None:
        ids = ctx.notes[NOTE] = new_ids(headers.get("traceparent"), ratio)
    return ids


def call_span_id(server_span: int, index: int) -> int:
    return ((server_span ^ ((index + 1) * _GOLDEN)) & _MASK) or 1


def traceparent(ids: TraceIds, span_id: int) -> str:
    return "00-%032x-%016x-%s" % (ids.trace_id, span_id, "01" if ids.sampled else "00")  # noqa: UP031 (faster here)
