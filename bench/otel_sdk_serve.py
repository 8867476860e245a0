"""`tierwise serve` with its spans made by the OpenTelemetry Python SDK instead of tierwise's own exporter.

The comparator for bench/observability_overhead.py (variant `metrics+otel-sdk`): what a user would
get by wiring the standard SDK — TracerProvider, BatchSpanProcessor (its background thread) and
the OTLP/HTTP protobuf exporter — to the same requests. tierwise's metrics and its `traceparent`
propagation stay on; at the end of each request the same server span, client spans (one per
upstream call) and events, with the same GenAI attributes, are made through the SDK's API.

    PYTHONPATH=bench/.envs/otel-sdk:src TW_OTEL_SDK_ENDPOINT=http://127.0.0.1:4318/v1/traces \\
        python bench/otel_sdk_serve.py serve -c tierwise.yaml

The SDK lives in bench/.envs/otel-sdk (bench/install_comparators.sh puts it there).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as G
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context

from tierwise.observability import observer as observer_mod
from tierwise.observability.spans import DECISION_EVENT, EVALUATION_EVENT

provider = TracerProvider(resource=Resource.create({"service.name": "tierwise"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=os.environ["TW_OTEL_SDK_ENDPOINT"])))
tracer = provider.get_tracer("tierwise")
OFFSET = time.time() - time.perf_counter()


class SdkSpans:
    """Stands where tierwise's SpanExporter stands: `submit` gets each finished request."""

    queue: list[Any] = []

    def __init__(self, kinds: dict[str, str]) -> None:
        self.kinds = kinds

    def submit(self, rec: Any) -> None:
        ids = rec.ids
        start = int((rec.started + OFFSET) * 1e9)
        parent = None
        if ids[2]:  # the parent span id (tierwise.observability.tracecontext)
            parent = set_span_in_context(NonRecordingSpan(SpanContext(
                int.from_bytes(ids[0], "big"), int.from_bytes(ids[2], "big"), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))))
        a = rec.answered
        attrs: dict[str, Any] = {
            G.GEN_AI_OPERATION_NAME: "chat", G.GEN_AI_REQUEST_MODEL: rec.requested_model,
            G.GEN_AI_REQUEST_STREAM: rec.stream, "http.response.status_code": rec.status,
            "tierwise.route": rec.route, "tierwise.api": rec.api, "tierwise.request_id": rec.request_id,
        }
        if a is not None:
            attrs.update({G.GEN_AI_RESPONSE_MODEL: a.model, G.GEN_AI_PROVIDER_NAME: self.kinds.get(a.provider or "", ""),
                          "tierwise.answered_by": a.name, "tierwise.locality": a.locality or ""})
        server = tracer.start_span(f"chat {rec.route}", context=parent, kind=SpanKind.SERVER, start_time=start,
                                   attributes=attrs)
        inside = set_span_in_context(server)
        tin = tout = 0
        for s in rec.steps:
            at = int((s.at + OFFSET) * 1e9)
            if s.kind == "call":
                c: dict[str, Any] = {G.GEN_AI_OPERATION_NAME: "chat", G.GEN_AI_REQUEST_MODEL: s.model or "",
                                     G.GEN_AI_PROVIDER_NAME: self.kinds.get(s.provider or "", ""),
                                     "tierwise.deployment": s.name, "tierwise.locality": s.locality or ""}
                if s.status is not None:
                    c["http.response.status_code"] = s.status
                if s.cost is not None:
                    c["tierwise.cost_usd"] = s.cost
                if s.usage is not None:
                    c[G.GEN_AI_USAGE_INPUT_TOKENS] = s.usage.input_tokens
                    c[G.GEN_AI_USAGE_OUTPUT_TOKENS] = s.usage.output_tokens
                    tin += s.usage.input_tokens
                    tout += s.usage.output_tokens
                span = tracer.start_span(f"chat {s.model}", context=inside, kind=SpanKind.CLIENT, start_time=at,
                                         attributes=c)
                span.end(end_time=at + int((s.latency_ms or 0.0) * 1e6))
            elif s.kind == "verdict":
                server.add_event(EVALUATION_EVENT, {G.GEN_AI_EVALUATION_NAME: s.name,
                                                    G.GEN_AI_EVALUATION_SCORE_LABEL: "pass" if s.ok else "fail"}, at)
            else:
                server.add_event(DECISION_EVENT, {"tierwise.policy": s.name, "tierwise.reason": s.reason}, at)
        server.set_attributes({G.GEN_AI_USAGE_INPUT_TOKENS: tin, G.GEN_AI_USAGE_OUTPUT_TOKENS: tout})
        server.end(end_time=start + int(rec.latency_ms * 1e6))

    async def aclose(self) -> None:
        provider.force_flush()

    def close(self) -> None:
        provider.force_flush()


_init = observer_mod.Observer.__init__


def _patched_init(self: Any, cfg: Any, gateway: Any) -> None:
    _init(self, cfg, gateway)
    # tierwise's ids and traceparent propagation on, its exporter replaced by the SDK
    self.exporter = SdkSpans({n: p.kind for n, p in gateway.cfg.providers.items()})
    self.tracing = True
    self.enabled = True


observer_mod.Observer.__init__ = _patched_init  # type: ignore[method-assign]

if __name__ == "__main__":
    from tierwise.cli import main

    sys.argv = ["tierwise", *sys.argv[1:]]
    try:
        main()
    finally:
        provider.shutdown()
