"""The hand-written OTLP encoder against opentelemetry-proto's own decoder, value kinds and sizes included."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.observability.otlp_receiver import attrs
from tierwise.observability import otlp_wire as wire

VALUES = {"small": 5, "zero": 0, "big": 2**40, "b127": 127, "b128": 128, "b16383": 16383, "b16384": 16384, "negative": -3, "f": 0.125, "yes": True, "no": False,
          "name": "qwen-local", "unicode": "prüfung ✓", "long": "x" * 5000}


def test_every_value_kind_decodes():
    head = wire.head("chat r", 2, {"gen_ai.operation.name": "chat", "route": "r"}, error=True)
    ev = wire.event("tierwise.decision", 123, {"tierwise.reason": "fell back"})
    span = wire.span(b"\x01" * 16, b"\x02" * 8, b"\x03" * 8, head, 10**18, 10**18 + 5, VALUES, [ev])
    body = wire.request(wire.field(b"\x0a", b""), wire.field(b"\x0a", b""), [span, span])
    req = ExportTraceServiceRequest.FromString(body)
    spans = req.resource_spans[0].scope_spans[0].spans
    assert len(spans) == 2
    s = spans[0]
    assert s.trace_id == b"\x01" * 16 and s.span_id == b"\x02" * 8 and s.parent_span_id == b"\x03" * 8
    assert s.name == "chat r" and s.kind == 2 and s.status.code == 2
    assert s.start_time_unix_nano == 10**18 and s.end_time_unix_nano == 10**18 + 5
    a = attrs(s.attributes)
    assert a == {"gen_ai.operation.name": "chat", "route": "r", **VALUES}
    assert s.events[0].name == "tierwise.decision" and s.events[0].time_unix_nano == 123
    assert attrs(s.events[0].attributes) == {"tierwise.reason": "fell back"}


def test_per_request_values_decode():
    """The encoders the exporter uses for per-request values: varints of every size, doubles, strings
    (request ids) and the one-byte fast path, as a span's attributes decoded by opentelemetry-proto."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    ints = [0, 5, 127, 128, 300, 16383, 16384, 2**21, 2**40]
    parts = [wire.IntAttr(wire.SPAN_ATTR, f"i{v}")(v) for v in ints]
    parts.append(wire.small_int_prefix(wire.SPAN_ATTR, "small") + wire.BYTE[42])
    parts.append(wire.double_prefix(wire.SPAN_ATTR, "d") + wire.double(0.375))
    rid = "req_0123456789abcdef0123456789"
    parts += [wire.value(wire.SPAN_ATTR, "rid", rid), wire.value(wire.SPAN_ATTR, "long", "y" * 300),
              wire.value(wire.SPAN_ATTR, "f", 1.5), wire.value(wire.SPAN_ATTR, "n", 7)]
    span = Span.FromString(b"".join(parts))
    assert attrs(span.attributes) == {**{f"i{v}": v for v in ints}, "small": 42, "d": 0.375, "rid": rid,
                                      "long": "y" * 300, "f": 1.5, "n": 7}
