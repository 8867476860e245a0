"""Finished requests as OTLP protobuf spans, at a fixed cost per span shape.

One server span per request, one client span per upstream call, span events for decisions and
verifier verdicts (`gen_ai.evaluation.result`). Everything that repeats across requests — a
span's name, kind, fixed attributes and status, the tag and length bytes before every value,
and the span's own length, which only depends on how wide its values are — is worked out once
per *shape*: the span's fixed attributes plus the widths of its per-request values (which
optional fields it has, how many bytes each token count takes as a varint). A shape is compiled
into one `struct` format with the constant bytes in between the values, so writing a span is one
`pack` call with the request's ids (kept as bytes from the draw), times and counts.
`tests/observability/test_span_encoder.py` decodes the output with opentelemetry-proto and
compares it byte for byte with a plain field-by-field encoder.

When the C extension `_spanpack` was built (at install; `setup.py`), the per-request part runs
there instead: it reads the finished record, looks the same heads and event bodies up (worked
out here, in Python, once per shape) and writes the request's spans as one bytes object, field
by field, the same bytes (tests/observability/test_span_native.py). A record it cannot write
(a value of an unexpected type or size) raises there and is written here.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as G
from opentelemetry.semconv.attributes import error_attributes, http_attributes

from tierwise.observability import otlp_wire as wire
from tierwise.observability.observer import MAX_CONTENT  # captured message content, when enabled
from tierwise.observability.tracecontext import span_id
from tierwise.observability.vocab import NONE, call_error_type, reason_label
from tierwise.secret_scrub import scrub, scrub_cut

try:
    from tierwise.observability import _spanpack as native  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the pure-Python writer below does it all
    native = None

MAX_TEXT = 300  # reasons and names on spans
ERROR_TYPE = error_attributes.ERROR_TYPE
HTTP_STATUS = http_attributes.HTTP_RESPONSE_STATUS_CODE
EVALUATION_EVENT = "gen_ai.evaluation.result"
DECISION_EVENT = "tierwise.decision"
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3
COST, REFERENCE_COST, REQUEST_ID = "tierwise.cost_usd", "tierwise.reference_cost_usd", "tierwise.request_id"
IN_TOKENS, OUT_TOKENS = G.GEN_AI_USAGE_INPUT_TOKENS, G.GEN_AI_USAGE_OUTPUT_TOKENS
CACHE_TOKENS, TTFT = G.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, G.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
SHAPES_MAX = 10_000  # compiled shapes and event bodies kept (each cache); past it, compiled per use

_SPANS_TAG = wire.SCOPE_SPANS_SPANS
_A = wire.SPAN_ATTR
_P_COST, _P_REF, _P_TTFT = (wire.double_prefix(_A, k) for k in (COST, REFERENCE_COST, TTFT))
_trunc = math.trunc  # int(x) for a float, at a third of int()'s cost
_NO_CALLS: dict[int, bytes] = {}


def _width(n: int) -> int:
    """Bytes of `n` as a protobuf varint."""
    return len(wire.varint(n))


def _int_prefix(key: str, width: int) -> bytes:
    """The bytes before a `width`-byte varint value of integer attribute `key`."""
    kb = wire.field(wire.KV_KEY, key.encode())
    return _A + wire.varint(len(kb) + 3 + width) + kb + wire.KV_VALUE + wire.BYTE[1 + width] + wire.ANY_INT


def _varint_field(name: str, width: int) -> tuple[str, str]:
    """A varint of known width as a struct field: one byte, two bytes as a little-endian short, or bytes."""
    if width == 1:
        return "B", name
    if width == 2:
        return "H", f"(({name} & 0x7F) | 0x80 | ({name} >> 7) << 8)"
    return f"{width}s", f"varint({name})"


def _compile(params: str, parts: list[Any], prefixed: bool) -> Any:
    """A function of `params` that returns the span's bytes: `parts` are constant bytes or
    (struct code, expression) pairs. With `prefixed`, the ScopeSpans.spans tag and the span's
    length go first (the length is fixed by the shape)."""
    fmt: list[str] = ["<"]
    consts: dict[str, bytes] = {}
    args: list[str] = []
    pending = b""
    size = 0
    for p in parts:
        if isinstance(p, bytes):
            pending += p
            continue
        if pending:
            name = f"K{len(consts)}"
            consts[name] = pending
            fmt.append(f"{len(pending)}s")
            args.append(name)
            size += len(pending)
            pending = b""
        fmt.append(p[0])
        args.append(p[1])
        size += struct.calcsize("<" + p[0])
    if pending:
        consts[f"K{len(consts)}"] = pending
        fmt.append(f"{len(pending)}s")
        args.append(f"K{len(consts) - 1}")
        size += len(pending)
    if prefixed:
        head = _SPANS_TAG + wire.varint(size)
        fmt.insert(1, f"{len(head)}s")
        consts["KH"] = head
        args.insert(0, "KH")
    env: dict[str, Any] = {"pack": struct.Struct("".join(fmt)).pack, "varint": wire.varint, **consts}
    exec(f"def write({params}):\n    return pack({', '.join(args)})\n", env)  # noqa: S102 (code made here)
    return env["write"]


_CLIENT_PARAMS = "head, tid, sid, parent, st, en, cost, nin, nout, ncache, ttft"
_SERVER_PARAMS = "head, tid, sid, parent, st, en, rid, nin, nout, ncache, ttft, cost, ref"


def _usage_parts(win: int, wout: int, wcache: int) -> list[Any]:
    """The token-count attributes of a span (widths of their varints fixed by the layout)."""
    parts: list[Any] = [_int_prefix(IN_TOKENS, win), _varint_field("nin", win),
                        _int_prefix(OUT_TOKENS, wout), _varint_field("nout", wout)]
    if wcache:
        parts += [_int_prefix(CACHE_TOKENS, wcache), _varint_field("ncache", wcache)]
    return parts


def _server_layout(layout: tuple[Any, ...]) -> Any:
    nhead, has_parent, nrid, win, wout, wcache, ttft, cost, ref = layout
    parts: list[Any] = [b"\x0a\x10", ("16s", "tid"), b"\x12\x08", ("8s", "sid")]
    if has_parent:
        parts += [b"\x22\x08", ("8s", "parent")]
    parts += [(f"{nhead}s", "head"), b"\x39", ("Q", "st"), b"\x41", ("Q", "en")]
    kb = wire.field(wire.KV_KEY, REQUEST_ID.encode())
    any_len = 1 + len(wire.varint(nrid)) + nrid  # AnyValue{string_value}
    inner = len(kb) + 1 + len(wire.varint(any_len)) + any_len  # KeyValue
    parts += [_A + wire.varint(inner) + kb + wire.KV_VALUE + wire.varint(any_len) + wire.ANY_STRING
              + wire.varint(nrid), (f"{nrid}s", "rid")]
    parts += _usage_parts(win, wout, wcache)
    if ttft:
        parts += [_P_TTFT, ("d", "ttft / 1000")]
    if cost:
        parts += [_P_COST, ("d", "cost")]
    if ref:
        parts += [_P_REF, ("d", "ref")]
    return _compile(_SERVER_PARAMS, parts, prefixed=False)


def _client_layout(layout: tuple[Any, ...]) -> Any:
    nhead, cost, win, wout, wcache, ttft = layout
    parts: list[Any] = [b"\x0a\x10", ("16s", "tid"), b"\x12\x08", ("8s", "sid"), b"\x22\x08", ("8s", "parent"),
                        (f"{nhead}s", "head"), b"\x39", ("Q", "st"), b"\x41", ("Q", "en")]
    if cost:
        parts += [_P_COST, ("d", "cost")]
    if win:  # usage known
        parts += _usage_parts(win, wout, wcache)
    if ttft:
        parts += [_P_TTFT, ("d", "ttft / 1000")]
    return _compile(_CLIENT_PARAMS, parts, prefixed=True)


class SpanEncoder:
    """Shapes are cached by everything that goes into the span but the per-request values, as (writer,
    span head) pairs; the writers themselves by layout only (head length, which values, their widths),
    of which there are few. Both caches are bounded: past `SHAPES_MAX` a shape is worked out per use."""

    def __init__(self, kinds: dict[str, str], offset: float, privacy: Any = None) -> None:
        self.kinds = kinds  # configured provider name -> openai | anthropic
        self.offset = offset  # perf_counter -> wall clock
        # With privacy configured, the boundary (its `clean_text`, `clean_name`): a verdict's or decision's reason
        # may quote the answer or the request (a schema violation names the value), the model name asked for is the
        # client's text, and protected values never leave in a span.
        self.privacy = privacy
        self._servers: dict[tuple[Any, ...], tuple[Any, bytes]] = {}
        self._clients: dict[tuple[Any, ...], tuple[Any, bytes]] = {}
        self._events: dict[tuple[Any, ...], tuple[Any, bytes, bytes]] = {}
        self._layouts: dict[tuple[Any, ...], Any] = {}
        self.fallbacks = 0  # records the native writer declined (written in Python instead)
        self._native_heads: tuple[dict[Any, bytes], ...] = ({}, {}, {})  # server, client, event
        self._native = self._native_writer() if native is not None else None

    def _native_writer(self) -> Any:
        kb = wire.field(wire.KV_KEY, REQUEST_ID.encode()), *(
            wire.field(wire.KV_KEY, k.encode()) for k in (IN_TOKENS, OUT_TOKENS, CACHE_TOKENS))
        return native.Writer(  # type: ignore[union-attr]
            self.offset, *self._native_heads, self._native_server, self._native_client, self._native_event,
            span_id, self._content_attr, call_error_type, NONE, *kb, _P_COST, _P_REF, _P_TTFT).write

    def use_native(self, on: bool) -> None:
        """Tests and benchmarks: write with the C writer (when built) or with the Python one."""
        self._native = self._native_writer() if on and native is not None else None

    # ------------------------------------------------------------------ shapes (once each)

    def _layout(self, layout: tuple[Any, ...], make: Any) -> Any:
        w = self._layouts.get(layout)
        if w is None:
            w = make(layout)
            if len(self._layouts) < SHAPES_MAX:
                self._layouts[layout] = w
        return w

    def server_head(self, rec: Any) -> bytes:
        """A server span's name, kind, fixed attributes and status."""
        a = rec.answered
        static: dict[str, Any] = {
            G.GEN_AI_OPERATION_NAME: "chat",
            # The client's text: a key sent as the model went to the collector as sent (session 29). Built once
            # per shape (the heads are cached by the requested model), so the scrub is off the usual path.
            G.GEN_AI_REQUEST_MODEL: scrub(rec.requested_model if self.privacy is None
                                          else self.privacy.clean_name(rec.requested_model) or "")[:MAX_TEXT],
            G.GEN_AI_REQUEST_STREAM: rec.stream,
            G.GEN_AI_RESPONSE_MODEL: a.model if a is not None else None,
            G.GEN_AI_PROVIDER_NAME: self.kinds.get(a.provider or "") if a is not None else None,
            HTTP_STATUS: rec.status,
            "tierwise.route": rec.route,
            "tierwise.api": rec.api,
            "tierwise.answered_by": a.name if a is not None else None,
            "tierwise.locality": a.locality if a is not None else None,
            ERROR_TYPE: rec.error_type if rec.error_type != NONE else None,
        }
        return wire.head(f"chat {rec.route}"[:MAX_TEXT], SPAN_KIND_SERVER, static,
                         rec.status >= 500 or rec.error_type != NONE)

    def client_head(self, s: Any, role: Any) -> bytes:
        """A client span's name, kind, fixed attributes and status."""
        cerr = call_error_type(s.ok, s.status, s.reason)
        static: dict[str, Any] = {
            G.GEN_AI_OPERATION_NAME: "chat",
            G.GEN_AI_PROVIDER_NAME: self.kinds.get(s.provider or ""),
            G.GEN_AI_REQUEST_MODEL: s.model,
            G.GEN_AI_RESPONSE_MODEL: s.model if s.ok else None,
            HTTP_STATUS: s.status,
            "tierwise.deployment": s.name,
            "tierwise.provider": s.provider,
            "tierwise.locality": s.locality,
            "tierwise.role": str(role) if role is not None else None,
            ERROR_TYPE: cerr if cerr != NONE else None,
        }
        return wire.head(f"chat {s.model}"[:MAX_TEXT], SPAN_KIND_CLIENT, static, s.ok is False)

    def _server_shape(self, rec: Any, key: tuple[Any, ...]) -> tuple[Any, bytes]:
        head = self.server_head(rec)
        shape = (self._layout((len(head), *key[7:]), _server_layout), head)
        if len(self._servers) < SHAPES_MAX:
            self._servers[key] = shape
        return shape

    def _client_shape(self, s: Any, role: Any, key: tuple[Any, ...]) -> tuple[Any, bytes]:
        head = self.client_head(s, role)
        shape = (self._layout((len(head), *key[8:]), _client_layout), head)
        if len(self._clients) < SHAPES_MAX:
            self._clients[key] = shape
        return shape

    def _reason(self, reason: str) -> str:
        if self.privacy is not None:
            reason = self.privacy.clean_text(reason) or ""  # the whole reason: a value cut in half is not found
        return scrub_cut(reason, MAX_TEXT)

    def event_body(self, s: Any) -> bytes:
        """A decision's or verdict's event, all but its time."""
        if s.kind == "verdict":
            return wire.event_body(EVALUATION_EVENT, {
                G.GEN_AI_EVALUATION_NAME: s.name[:MAX_TEXT],
                G.GEN_AI_EVALUATION_SCORE_VALUE: s.score,
                G.GEN_AI_EVALUATION_SCORE_LABEL: "pass" if s.ok else "fail",
                G.GEN_AI_EVALUATION_EXPLANATION: self._reason(s.reason),
            })
        return wire.event_body(DECISION_EVENT, {
            "tierwise.policy": s.name[:MAX_TEXT],
            "tierwise.reason": self._reason(s.reason),
            "tierwise.reason_label": reason_label(s.reason),
        })

    def _event(self, s: Any, key: tuple[Any, ...]) -> tuple[Any, bytes, bytes]:
        body = self.event_body(s)
        pre = wire.SPAN_EVENT + wire.varint(9 + len(body)) + wire.EVENT_TIME
        ev = (struct.Struct(f"<{len(pre)}sQ{len(body)}s").pack, pre, body)
        if len(self._events) < SHAPES_MAX:
            self._events[key] = ev
        return ev

    # The native writer's caches: heads by everything that goes into them (no layout: it writes the values
    # field by field). Bounded like the others.

    def _native_server(self, rec: Any, key: tuple[Any, ...]) -> bytes:
        head = self.server_head(rec)
        if len(self._native_heads[0]) < SHAPES_MAX:
            self._native_heads[0][key] = head
        return head

    def _native_client(self, s: Any, role: Any, key: tuple[Any, ...]) -> bytes:
        head = self.client_head(s, role)
        if len(self._native_heads[1]) < SHAPES_MAX:
            self._native_heads[1][key] = head
        return head

    def _native_event(self, s: Any, key: tuple[Any, ...]) -> bytes:
        body = self.event_body(s)
        if len(self._native_heads[2]) < SHAPES_MAX:
            self._native_heads[2][key] = body
        return body

    @staticmethod
    def _content_attr(rec: Any) -> bytes:
        return wire.value(_A, G.GEN_AI_INPUT_MESSAGES, scrub_cut(rec.content, MAX_CONTENT))

    # ------------------------------------------------------------------ per request

    def spans_of(self, rec: Any, out: list[bytes]) -> None:
        """Append the request's spans (server first, then one client span per upstream call) to `out`, as
        ScopeSpans.spans entries: with the C writer when it was built, else (or when it declines the
        record) in Python."""
        w = self._native
        if w is not None:
            try:
                w(rec, out)
                return
            except Exception:
                self.fallbacks += 1
        self.spans_of_python(rec, out)

    def spans_of_python(self, rec: Any, out: list[bytes]) -> None:
        """`spans_of` in Python. Written out flat: without the C writer this runs for every traced request."""
        tid, sid, parent, _, calls, _, _ = rec.ids
        calls = calls or _NO_CALLS
        off = self.offset
        trunc = _trunc
        clients = self._clients
        evcache = self._events
        events: list[bytes] = []
        spans: list[bytes] = []
        tin = tout = tcache = 0
        total_cost = 0.0
        i = -1
        for s in rec.steps:
            i += 1
            if s.kind == "call":
                ok = s.ok
                role = s.detail.get("role") if s.detail else None
                c = s.cost
                if c is not None:
                    if type(c) is not float:
                        c = float(c)
                    total_cost += c
                u = s.usage
                if u is not None:
                    nin, nout, ncache = u.input_tokens, u.output_tokens, u.cache_read_tokens
                    tin += nin
                    tout += nout
                    tcache += ncache
                    win = 1 if 0 <= nin < 0x80 else _width(nin)
                    wout = 1 if 0 <= nout < 0x80 else _width(nout)
                    wcache = _width(ncache) if ncache else 0
                else:
                    nin = nout = ncache = win = wout = wcache = 0
                ttft = s.ttft_ms
                key: tuple[Any, ...] = (
                    s.name, s.model, s.provider, s.locality, ok, s.status, role,
                    NONE if ok is not False else call_error_type(ok, s.status, s.reason),
                    c is not None, win, wout, wcache, ttft is not None)
                w, head = clients.get(key) or self._client_shape(s, role, key)
                st = s.at + off
                spans.append(w(head, tid, calls.get(i) or span_id(), sid, trunc(st * 1e9),
                               trunc((st + (s.latency_ms or 0.0) / 1000) * 1e9), c, nin, nout, ncache, ttft))
            else:
                key = (s.kind, s.name, s.ok, s.score, s.reason)
                pack, pre, body = evcache.get(key) or self._event(s, key)
                events.append(pack(pre, trunc((s.at + off) * 1e9), body))
        a = rec.answered
        stream = rec.stream
        ttft = rec.ttft_ms if stream else None
        ref = rec.reference_cost
        if ref is not None and type(ref) is not float:
            ref = float(ref)
        rid = rec.request_id.encode("utf-8", "replace")
        win = 1 if 0 <= tin < 0x80 else _width(tin)
        wout = 1 if 0 <= tout < 0x80 else _width(tout)
        key = (rec.route, rec.requested_model, stream, a.name if a is not None else None, rec.status, rec.api,
               rec.error_type, len(parent), len(rid), win, wout, _width(tcache) if tcache else 0, bool(ttft),
               bool(total_cost), ref is not None)
        w, head = self._servers.get(key) or self._server_shape(rec, key)
        st = rec.started + off
        span = w(head, tid, sid, parent, trunc(st * 1e9), trunc((st + rec.latency_ms / 1000) * 1e9), rid, tin, tout,
                 tcache, ttft, total_cost, ref)
        if rec.content is not None:
            events.insert(0, self._content_attr(rec))
        if events:
            span = b"".join((span, *events))
        n = len(span)
        out.append(_SPANS_TAG + (wire.BYTE[n] if n < 0x80 else wire.varint(n)))
        out.append(span)
        out += spans

    def encode(self, batch: list[Any]) -> list[bytes]:
        """ScopeSpans.spans entries for a batch of finished requests."""
        out: list[bytes] = []
        spans_of = self.spans_of
        for rec in batch:
            spans_of(rec, out)
        return out
