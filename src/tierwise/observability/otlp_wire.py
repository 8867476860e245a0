"""A small protobuf writer for OTLP spans (trace.proto), so export costs microseconds per request.

Building opentelemetry-proto's message objects took ~250 µs per traced request on this machine
(one Python object per attribute); writing the wire format directly, with the encoded bytes of
repeated attributes (same key, same bounded value) cached, is an order of magnitude cheaper. The
constant parts (resource, scope) are still made with opentelemetry-proto's classes, once; the
tests decode every export with those classes, so a wrong field number cannot pass unnoticed.
"""

from __future__ import annotations

import struct
from typing import Any

# Field tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited).
SPAN_TRACE_ID = b"\x0a"  # 1, bytes
SPAN_SPAN_ID = b"\x12"  # 2
SPAN_PARENT = b"\x22"  # 4
SPAN_NAME = b"\x2a"  # 5
SPAN_KIND = b"\x30"  # 6, varint
SPAN_START = b"\x39"  # 7, fixed64
SPAN_END = b"\x41"  # 8, fixed64
SPAN_ATTR = b"\x4a"  # 9
SPAN_EVENT = b"\x5a"  # 11
SPAN_STATUS = b"\x7a"  # 15
EVENT_TIME = b"\x09"  # 1, fixed64
EVENT_NAME = b"\x12"  # 2
EVENT_ATTR = b"\x1a"  # 3
STATUS_CODE = b"\x18"  # 3, varint
KV_KEY = b"\x0a"  # 1
KV_VALUE = b"\x12"  # 2
ANY_STRING = b"\x0a"  # 1
ANY_BOOL = b"\x10"  # 2, varint
ANY_INT = b"\x18"  # 3, varint
ANY_DOUBLE = b"\x21"  # 4, fixed64
SCOPE_SPANS_SPANS = b"\x12"  # ScopeSpans.spans = 2
RESOURCE_SPANS_SCOPE_SPANS = b"\x12"  # ResourceSpans.scope_spans = 2
REQUEST_RESOURCE_SPANS = b"\x0a"  # ExportTraceServiceRequest.resource_spans = 1

_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_CACHE_MAX = 20_000
_BYTE = [bytes((i,)) for i in range(256)]


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    if n < 0x80:
        return _BYTE[n]
    if n < 0x4000:  # spans and attribute blocks: two bytes
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def fixed64(tag: bytes, n: int) -> bytes:
    return tag + _fixed64(n)


_attr_cache: dict[tuple[bytes, str, Any], bytes] = {}
_key_cache: dict[str, bytes] = {}


def _key(key: str) -> bytes:
    b = _key_cache.get(key)
    if b is None:
        b = _key_cache[key] = field(KV_KEY, key.encode())
    return b


def attr(tag: bytes, key: str, value: Any) -> bytes:
    """One attribute as an encoded `KeyValue` field (`tag`: the span's or the event's attributes field)."""
    cls = type(value)
    if cls is str and len(value) <= 120:  # names, models, routes: few distinct values, cached whole
        ck = (tag, key, value)
        b = _attr_cache.get(ck)
        if b is not None:
            return b
        anyv = ANY_STRING + varint(len(value.encode())) + value.encode()
        inner = _key(key) + KV_VALUE + varint(len(anyv)) + anyv
        b = tag + varint(len(inner)) + inner
        if len(_attr_cache) < _CACHE_MAX:
            _attr_cache[ck] = b
        return b
    if cls is int and 0 <= value < 0x80:  # small counts: one byte, no varint loop
        kb = _key(key)
        return tag + bytes((len(kb) + 4,)) + kb + b"\x12\x02\x18" + bytes((value,))
    if cls is float:
        kb = _key(key)
        return tag + bytes((len(kb) + 11,)) + kb + b"\x12\x09\x21" + _double(value)
    if cls is bool:
        anyv = ANY_BOOL + (b"\x01" if value else b"\x00")
    elif cls is int:
        anyv = ANY_INT + varint(value)
    else:
        raw = str(value).encode("utf-8", "replace")
        anyv = ANY_STRING + varint(len(raw)) + raw
    inner = _key(key) + KV_VALUE + varint(len(anyv)) + anyv
    return tag + varint(len(inner)) + inner


def attributes(tag: bytes, pairs: dict[str, Any]) -> list[bytes]:
    return [attr(tag, k, v) for k, v in pairs.items() if v is not None and v != ""]


_small_int: dict[tuple[bytes, str], bytes] = {}
_float: dict[tuple[bytes, str], bytes] = {}


def numbers(tag: bytes, pairs: dict[str, Any]) -> list[bytes]:
    """Attributes whose values change with every request (counts, durations, ids): the values are
    never cached, the bytes before them (tag, length, key) are, per key."""
    out = []
    for key, value in pairs.items():
        if value is None:
            continue
        cls = type(value)
        if cls is int and 0 <= value < 0x80:
            pre = _small_int.get((tag, key))
            if pre is None:
                kb = _key(key)
                pre = _small_int[(tag, key)] = tag + bytes((len(kb) + 4,)) + kb + b"\x12\x02\x18"
            out.append(pre + _BYTE[value])
        elif cls is float:
            pre = _float.get((tag, key))
            if pre is None:
                kb = _key(key)
                pre = _float[(tag, key)] = tag + bytes((len(kb) + 11,)) + kb + b"\x12\x09\x21"
            out.append(pre + _double(value))
        else:
            kb = _key(key)
            if cls is int:
                anyv = ANY_INT + varint(value)
            elif cls is bool:
                anyv = ANY_BOOL + (b"\x01" if value else b"\x00")
            else:
                raw = str(value).encode("utf-8", "replace")
                anyv = ANY_STRING + varint(len(raw)) + raw
            inner = kb + KV_VALUE + varint(len(anyv)) + anyv
            out.append(tag + varint(len(inner)) + inner)
    return out


_int_pre: dict[tuple[bytes, str], bytes] = {}


def value(tag: bytes, key: str, v: Any) -> bytes:
    """One per-request attribute (a count, a duration, an id): like `numbers`, without the dict."""
    cls = type(v)
    if cls is float:
        pre = _float.get((tag, key))
        if pre is None:
            kb = _key(key)
            pre = _float[(tag, key)] = tag + bytes((len(kb) + 11,)) + kb + b"\x12\x09\x21"
        return pre + _double(v)
    if cls is int and 0 <= v < 0x80:
        pre = _small_int.get((tag, key))
        if pre is None:
            kb = _key(key)
            pre = _small_int[(tag, key)] = tag + bytes((len(kb) + 4,)) + kb + b"\x12\x02\x18"
        return pre + _BYTE[v]
    if cls is str:  # ids: the same length every time, so the bytes before the value are cached per length
        raw = v.encode("utf-8", "replace")
        n = len(raw)
        if n <= 125:
            pre = _str_pre.get((tag, key, n))
            if pre is None:
                kb = _key(key)
                pre = _str_pre[(tag, key, n)] = (tag + varint(len(kb) + 4 + n) + kb + KV_VALUE + _BYTE[n + 2]
                                                 + ANY_STRING + _BYTE[n])
            return pre + raw
    return numbers(tag, {key: v})[0]


_str_pre: dict[tuple[bytes, str, int], bytes] = {}


def double_prefix(tag: bytes, key: str) -> bytes:
    """The bytes before an 8-byte double value of attribute `key` (callers append `_double(v)`)."""
    kb = _key(key)
    return tag + bytes((len(kb) + 11,)) + kb + b"\x12\x09\x21"


double = _double
fixed64_value = _fixed64
BYTE = _BYTE


def small_int_prefix(tag: bytes, key: str) -> bytes:
    """The bytes before a one-byte integer value (0-127) of attribute `key`."""
    kb = _key(key)
    return tag + bytes((len(kb) + 4,)) + kb + b"\x12\x02\x18"


class IntAttr:
    """Encodes one integer attribute with its prefix cached per value size (token counts: 1-3 bytes)."""

    __slots__ = ("tag", "key", "_pre")

    def __init__(self, tag: bytes, key: str) -> None:
        self.tag, self.key = tag, key
        self._pre: dict[int, bytes] = {}

    def __call__(self, v: int) -> bytes:
        if 0 <= v < 0x80:
            vb = _BYTE[v]
        elif 0 <= v < 0x4000:
            vb = bytes(((v & 0x7F) | 0x80, v >> 7))
        else:
            vb = varint(v)
        n = len(vb)
        pre = self._pre.get(n)
        if pre is None:
            kb = _key(self.key)
            pre = self._pre[n] = self.tag + varint(len(kb) + 3 + n) + kb + KV_VALUE + _BYTE[1 + n] + ANY_INT
        return pre + vb


times = _times = struct.Struct("<BQBQ").pack  # start (field 7) and end (field 8), both fixed64


def request_of(resource: bytes, scope: bytes, span_entries: list[bytes]) -> bytes:
    """ExportTraceServiceRequest (one ResourceSpans, one ScopeSpans) from ready ScopeSpans.spans entries
    (each: the field's tag and length, then the span's bytes; spans.py writes them)."""
    n = len(scope) + sum(map(len, span_entries))
    scope_spans_pre = RESOURCE_SPANS_SCOPE_SPANS + varint(n)
    inner = len(resource) + len(scope_spans_pre) + n
    return b"".join((REQUEST_RESOURCE_SPANS, varint(inner), resource, scope_spans_pre, scope, *span_entries))


def head(name: str, kind: int, static: dict[str, Any], error: bool) -> bytes:
    """The parts of a span that repeat across requests (name, kind, fixed attributes, status), encoded
    once and cached by the caller."""
    parts = [field(SPAN_NAME, name.encode("utf-8", "replace")), SPAN_KIND + varint(kind)]
    parts += attributes(SPAN_ATTR, static)
    if error:
        parts.append(field(SPAN_STATUS, STATUS_CODE + b"\x02"))  # STATUS_CODE_ERROR
    return b"".join(parts)


def span(trace_id: bytes, span_id: bytes, parent: bytes | None, head_b: bytes, start: int, end: int,
         attrs: dict[str, Any], events: list[bytes] | None = None) -> bytes:
    """One span: `head_b` from `head`, `attrs` the per-request attributes (see `numbers`)."""
    parts = [SPAN_TRACE_ID + b"\x10" + trace_id, SPAN_SPAN_ID + b"\x08" + span_id]
    if parent:
        parts.append(SPAN_PARENT + b"\x08" + parent)
    parts += [head_b, SPAN_START + _fixed64(start), SPAN_END + _fixed64(end)]
    parts += numbers(SPAN_ATTR, attrs)
    if events:
        parts += [field(SPAN_EVENT, e) for e in events]
    return b"".join(parts)


def event(name: str, at: int, attrs: dict[str, Any]) -> bytes:
    return EVENT_TIME + _fixed64(at) + event_body(name, attrs)


def event_body(name: str, attrs: dict[str, Any]) -> bytes:
    """An event without its time (callers cache it for events that repeat)."""
    return b"".join([field(EVENT_NAME, name.encode()), *attributes(EVENT_ATTR, attrs)])


def timed_event(at: int, body: bytes) -> bytes:
    return EVENT_TIME + _fixed64(at) + body


def request(resource: bytes, scope: bytes, spans: list[bytes]) -> bytes:
    """ExportTraceServiceRequest with one ResourceSpans and one ScopeSpans; `resource` and `scope` are
    the encoded `resource` (field 1) and `scope` (field 1) entries."""
    scope_spans = scope + b"".join(field(SCOPE_SPANS_SPANS, s) for s in spans)
    resource_spans = resource + field(RESOURCE_SPANS_SCOPE_SPANS, scope_spans)
    return field(REQUEST_RESOURCE_SPANS, resource_spans)
