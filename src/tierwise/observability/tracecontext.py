"""W3C trace context: read an incoming `traceparent`, make ids, and give each upstream call its span id.

A request's ids are made once (lazily, by whoever needs them first: the upstream call that
passes them on, or the end of the request) and kept in `ctx.notes`. Ids are bytes from the
draw to the wire (OTLP carries them as bytes). They come ready-made from a pool: one
`os.urandom` per 256 requests gives each request a trace id, a server span id, the span id
of its first upstream call and a spare span id, and the pool's records — with that first call's `traceparent`
header — are built for all 256 at once in C loops (struct, hexlify, bytes formatting, zip), so a request
takes a record and cuts nothing. Each upstream call files its span id under its step's index
(`ids[CALLS]`), where the span encoder finds it; later calls of the same request draw their own.

With the C extension built (`_spanids`, setup.py), a request's record is made by it instead
(ids from a xoshiro256** generator seeded from os.urandom at import and in a forked child; no pool, no
urandom per draw).

A request's ids are a list (made in bulk; the calls slot is filled in by the first call):
[trace id, server span id, parent span id or b"", sampled, {step index: call span id} or None,
the first call's span id or None, the first call's `traceparent` or None].
"""

from __future__ import annotations

import binascii
import os
import re
import struct
from itertools import repeat
from typing import Any

NOTE = "otel"
TRACE, SPAN, PARENT, SAMPLED, CALLS, FIRST_CALL, FIRST_HEADER = range(7)
TraceIds = list[Any]  # the layout above
_TP = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO8 = bytes(8)
_ZERO16 = bytes(16)
_K = 256  # requests per draw
_SPLIT = struct.Struct("16s8s8s8s" * _K).unpack  # per request: trace id, server span id, first call's, a spare
_HEX_SPLIT = struct.Struct("32s16x16s16x" * _K).unpack  # in hex: trace id, first call's span id
_HEADERS = b"00-%s-%s-01\n" * _K  # the first calls' traceparent headers, formatted in one go


class _Pool:
    """Ready-made id records. Identifiers, not secrets (as in the OTel SDK)."""

    __slots__ = ("records", "next", "spare")

    def __init__(self) -> None:
        self.refill()

    def refill(self) -> None:
        raw = os.urandom(_K * 40)
        while _ZERO8 in raw:  # an all-zero id is invalid; redraw rather than check each (p ~ 2^-50)
            raw = os.urandom(_K * 40)
        ids = _SPLIT(raw)
        headers = (_HEADERS % _HEX_SPLIT(binascii.hexlify(raw))).decode("ascii").split("\n")
        self.records = list(map(list, zip(ids[0::4], ids[1::4], repeat(b""), repeat(True), repeat(None), ids[2::4],
                                          headers)))
        self.spare = list(ids[3::4])  # span ids for later calls, calls that sent none, evaluations
        self.next = 0


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.refill)  # a forked worker must not repeat its parent's ids

try:
    from tierwise.observability._spanids import new_record as _native_record  # type: ignore[import-not-found]
    from tierwise.observability._spanids import reseed as _reseed
    from tierwise.observability._spanids import span_id as _native_span_id
except ImportError:  # not built: the pool above
    _native_record = _native_span_id = None
else:
    _reseed(os.urandom(32))
    os.register_at_fork(after_in_child=lambda: _reseed(os.urandom(32)))


def parse(header: str | None) -> tuple[bytes, bytes, bool] | None:
    if not header or len(header) > 512:
        return None
    m = _TP.match(header.strip().lower())
    if m is None:
        return None
    tid, sid = bytes.fromhex(m.group(1)), bytes.fromhex(m.group(2))
    if tid == _ZERO16 or sid == _ZERO8:
        return None
    return tid, sid, bool(int(m.group(3), 16) & 1)


def new_ids(header: str | None, ratio: float) -> TraceIds:
    if _native_record is not None:
        if not header and ratio >= 1.0:  # the common case, in one test
            return _native_record()  # type: ignore[no-any-return]
        ids = _native_record()
    else:
        pool = _pool
        i = pool.next
        if i == _K:
            pool.refill()
            i = 0
        pool.next = i + 1
        ids = pool.records[i]
    if header:
        parent = parse(header)
        if parent is not None:  # parent-based sampling: the caller decided
            return [parent[0], ids[SPAN], parent[1], parent[2], None, None, None]
    # Ratio sampling by trace id, as OTel's TraceIdRatioBased does (lower 64 bits).
    if ratio < 1.0 and int.from_bytes(ids[TRACE][8:], "big") >= ratio * (1 << 64):
        ids[SAMPLED] = False
        ids[FIRST_HEADER] = None  # (it says sampled)
    return ids


def ids_for(ctx: Any, headers: dict[str, str], ratio: float, parent_header: str = "traceparent") -> TraceIds:
    """`parent_header` "" when callers' trace context is not trusted (`tracing.trust_traceparent`)."""
    ids = ctx.notes.get(NOTE)
    if ids is None:
        ids = ctx.notes[NOTE] = new_ids(headers.get(parent_header), ratio)
    return ids


def call_traceparent(ids: TraceIds, index: int) -> str:
    """`traceparent` for the upstream call of step `index`, whose span id is filed under the index: the
    request's first call takes its record's prepared id and header."""
    calls = ids[CALLS]
    header = ids[FIRST_HEADER]
    if calls is None and header is not None:
        ids[CALLS] = {index: ids[FIRST_CALL]}
        return header  # type: ignore[no-any-return]
    span = span_id()
    if calls is None:
        ids[CALLS] = calls = {}
    calls[index] = span
    return "00-" + ids[TRACE].hex() + "-" + span.hex() + ("-01" if ids[SAMPLED] else "-00")


def span_id() -> bytes:
    """A new span id (a later upstream call, a call step no `traceparent` went out for, an evaluation's
    server span)."""
    if _native_span_id is not None:
        return _native_span_id()  # type: ignore[no-any-return]
    pool = _pool
    if not pool.spare:
        pool.refill()
    return pool.spare.pop()  # type: ignore[no-any-return]
