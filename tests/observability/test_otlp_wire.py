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
