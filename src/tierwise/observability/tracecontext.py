"""W3C trace context: read an incoming `traceparent`, make ids, and give each upstream call its span id.

A request's ids are made once (lazily, by whoever needs them first: the upstream call that
passes them on, or the end of the request) and kept in `ctx.notes`. Ids are bytes from the
draw to the wire (OTLP carries them as bytes). They come from a pool: one `os.urandom` per 256
requests gives each request a trace id, a server span id and the span id of its first upstream
call, and the `traceparent` header of that first call is made for the whole pool at once, in C
loops (hexlify, struct, join), so the request path only cuts slices. Each upstream call files
its span id under its step's index (`ids[CALLS]`), where the span encoder finds it.

The ids of a request are a plain tuple (a NamedTuple costs ~1.5 µs more to make, per request):
(trace id, server span id, parent span id or b"", sampled, {step index: call span id}, offset of
its pool record or -1, that pool's headers and raw bytes).
"""

from __future__ import annotations

import binascii
import os
import re
import struct
from itertools import chain, repeat
from typing import Any

NOTE = "otel"
TRACE, SPAN, PARENT, SAMPLED, CALLS, RECORD, HEADERS, RAW = range(8)
TraceIds = tuple[Any, ...]  # the layout above
_TP = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO8 = bytes(8)
_ZERO16 = bytes(16)
_K = 256  # requests per draw
_HEX_SPLIT = struct.Struct("32s16s16s" * _K).unpack  # hex of (trace id, server span, first call span) per request
_TPLEN = 55  # len("00-" + 32 + "-" + 16 + "-01")


class _Pool:
    """Random ids, and the first call's `traceparent` per request. Identifiers, not secrets (as in the
    OTel SDK)."""

    __slots__ = ("raw", "headers", "next")

    def __init__(self) -> None:
        self.refill()

    def refill(self) -> None:
        raw = os.urandom(_K * 32)  # per request: trace id (16), server span id (8), first call's span id (8)
        while _ZERO8 in raw:  # an all-zero id is invalid; redraw rather than check each (p ~ 2^-50)
            raw = os.urandom(_K * 32)
        hexes = _HEX_SPLIT(binascii.hexlify(raw))
        self.headers = b"".join(chain.from_iterable(zip(
            repeat(b"00-"), hexes[0::3], repeat(b"-"), hexes[2::3], repeat(b"-01")))).decode("ascii")
        self.raw = raw
        self.next = 0


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.refill)  # a forked worker must not repeat its parent's ids


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


def new_ids(header: str | None, ratio: float) -> tuple[Any, ...]:
    pool = _pool
    i = pool.next
    if i == _K:
        pool.refill()
        i = 0
    pool.next = i + 1
    raw = pool.raw
    o = i * 32
    if header:
        parent = parse(header)
        if parent is not None:  # parent-based sampling: the caller decided
            return (parent[0], raw[o + 16:o + 24], parent[1], parent[2], {}, -1, "", b"")
    tid = raw[o:o + 16]
    # Ratio sampling by trace id, as OTel's TraceIdRatioBased does (lower 64 bits).
    sampled = ratio >= 1.0 or int.from_bytes(tid[8:], "big") < ratio * (1 << 64)
    return (tid, raw[o + 16:o + 24], b"", sampled, {}, o, pool.headers, raw)


def ids_for(ctx: Any, headers: dict[str, str], ratio: float) -> tuple[Any, ...]:
    ids = ctx.notes.get(NOTE)
    if ids is None:
        ids = ctx.notes[NOTE] = new_ids(headers.get("traceparent"), ratio)
    return ids


def call_traceparent(ids: tuple[Any, ...], index: int) -> str:
    """`traceparent` for the upstream call of step `index`, whose span id is filed under the index: the
    request's first call takes its pool record's prepared id and header."""
    calls = ids[CALLS]
    o = ids[RECORD]
    if not calls and o >= 0 and ids[SAMPLED]:
        calls[index] = ids[RAW][o + 24:o + 32]
        h = o // 32 * _TPLEN
        return ids[HEADERS][h:h + _TPLEN]  # type: ignore[no-any-return]
    span = span_id()
    calls[index] = span
    return "00-" + ids[TRACE].hex() + "-" + span.hex() + ("-01" if ids[SAMPLED] else "-00")


def span_id() -> bytes:
    """A new span id (a later upstream call, a call step no `traceparent` went out for, an evaluation's
    server span): a pool record's spare id."""
    pool = _pool
    i = pool.next
    if i == _K:
        pool.refill()
        i = 0
    pool.next = i + 1
    o = i * 32 + 24
    return pool.raw[o:o + 8]
