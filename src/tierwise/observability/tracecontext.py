"""W3C trace context: read an incoming `traceparent`, make ids, and give each upstream call its span id.

A request's ids are made once (lazily, by whoever needs them first: the upstream call that
passes them on, or the end of the request) and kept in `ctx.notes`. Ids are bytes from the
first draw to the wire (OTLP carries them as bytes): they are cut from a pool of random bytes
drawn with one `os.urandom` per 340 requests, whose hex form is made with it, so `traceparent`
needs no integer formatting. Each upstream call that passes `traceparent` on draws its own span
id and files it under its step's index (`TraceIds.calls`), where the span encoder finds it.
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

NOTE = "otel"
_TP = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO8 = bytes(8)
_ZERO16 = bytes(16)
_POOL = 8160  # bytes per os.urandom draw: 340 requests of a 16-byte trace id and an 8-byte span id


class TraceIds(NamedTuple):
    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes: the server span
    parent_id: bytes  # 8 bytes: the client's span (b"": none)
    sampled: bool
    calls: dict[int, bytes]  # step index -> span id of that upstream call (drawn when `traceparent` went out)
    prefix: str  # "00-<trace id>-": what every `traceparent` of this request starts with
    flags: str  # "-01" (sampled) or "-00"


class _Pool:
    """Random bytes and their hex, handed out in slices. Identifiers, not secrets (as in the OTel SDK)."""

    __slots__ = ("raw", "hex", "pos")

    def __init__(self) -> None:
        self.refill()

    def refill(self) -> None:
        self.raw = os.urandom(_POOL)
        self.hex = self.raw.hex()
        self.pos = 0


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


_new = tuple.__new__  # a NamedTuple's own constructor costs ~3x more (it runs per request)


def new_ids(header: str | None, ratio: float) -> TraceIds:
    pool = _pool
    p = pool.pos
    if p + 24 > _POOL:
        pool.refill()
        p = 0
    pool.pos = p + 24
    raw = pool.raw
    span = raw[p + 16:p + 24]
    if span == _ZERO8:  # (2^-64)
        span = b"\x00" * 7 + b"\x01"
    if header:
        parent = parse(header)
        if parent is not None:  # parent-based sampling: the caller decided
            tid, sampled = parent[0], parent[2]
            return _new(TraceIds, (tid, span, parent[1], sampled, {}, "00-" + tid.hex() + "-",
                                   "-01" if sampled else "-00"))
    tid = raw[p:p + 16]
    if tid == _ZERO16:  # (2^-128)
        tid = b"\x00" * 15 + b"\x01"
    # Ratio sampling by trace id, as OTel's TraceIdRatioBased does (lower 64 bits).
    sampled = ratio >= 1.0 or int.from_bytes(tid[8:], "big") < ratio * (1 << 64)
    return _new(TraceIds, (tid, span, b"", sampled, {}, "00-" + pool.hex[2 * p:2 * p + 32] + "-",
                           "-01" if sampled else "-00"))


def ids_for(ctx: Any, headers: dict[str, str], ratio: float) -> TraceIds:
    ids: TraceIds | None = ctx.notes.get(NOTE)
    if ids is None:
        ids = ctx.notes[NOTE] = new_ids(headers.get("traceparent"), ratio)
    return ids


def call_traceparent(ids: TraceIds, index: int) -> str:
    """`traceparent` for the upstream call of step `index`: a new span id, filed under the index."""
    pool = _pool
    p = pool.pos
    if p + 8 > _POOL:
        pool.refill()
        p = 0
    pool.pos = p + 8
    span = pool.raw[p:p + 8]
    if span == _ZERO8:
        span = b"\x00" * 7 + b"\x01"
    ids.calls[index] = span
    return ids.prefix + span.hex() + ids.flags


def span_id() -> bytes:
    """A new span id (a call step no `traceparent` was sent for, an evaluation's server span)."""
    pool = _pool
    p = pool.pos
    if p + 8 > _POOL:
        pool.refill()
        p = 0
    pool.pos = p + 8
    span = pool.raw[p:p + 8]
    return span if span != _ZERO8 else b"\x00" * 7 + b"\x01"
