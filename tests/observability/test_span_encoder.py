"""The span encoder's compiled shapes against a plain field-by-field encoder (otlp_wire's generic
span/event/attribute writers, which test_otlp_wire checks against opentelemetry-proto): the same
bytes for varied requests — unicode, empty strings, token counts of every varint width, events,
missing usage, cost and times, a caller's parent span, captured content, failed and helper calls —
and what opentelemetry-proto decodes from them."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.harness import unavailable
from tests.observability.otlp_receiver import attrs
from tierwise.canonical import Usage
from tierwise.observability import otlp_wire as wire
from tierwise.observability.observer import Finished
from tierwise.observability.span_encoder import (
    CACHE_TOKENS,
    COST,
    IN_TOKENS,
    MAX_CONTENT,
    OUT_TOKENS,
    REFERENCE_COST,
    REQUEST_ID,
    TTFT,
    SpanEncoder,
)
from tierwise.observability.tracecontext import CALLS, new_ids, span_id
from tierwise.secret_scrub import scrub_cut
from tierwise.trace import Step

KINDS = {"cloud": "anthropic", "localsrv": "openai"}
RESOURCE, SCOPE = wire.field(b"\x0a", b""), wire.field(b"\x0a", b"")
TOKENS = [0, 1, 127, 128, 300, 16383, 16384, 2**21, 2**40]


def reference(enc: SpanEncoder, rec: Any) -> list[bytes]:
    """The request's spans, one field at a time (server span first, then its client spans)."""
    tid, sid, parent, _, calls, *_ = rec.ids
    off = enc.offset
    events, clients = [], []
    tin = tout = tcache = 0
    total = 0.0
    for i, s in enumerate(rec.steps):
        if s.kind != "call":
            events.append(wire.timed_event(int((s.at + off) * 1e9), enc.event_body(s)))
            continue
        role = s.detail.get("role") if s.detail else None
        a: dict[str, Any] = {}
        if s.cost is not None:
            a[COST] = float(s.cost)
            total += float(s.cost)
        if s.usage is not None:
            u = s.usage
            a |= {IN_TOKENS: u.input_tokens, OUT_TOKENS: u.output_tokens, CACHE_TOKENS: u.cache_read_tokens or None}
            tin, tout, tcache = tin + u.input_tokens, tout + u.output_tokens, tcache + u.cache_read_tokens
        if s.ttft_ms is not None:
            a[TTFT] = s.ttft_ms / 1000
        start = s.at + off
        clients.append(wire.span(tid, calls[i], sid, enc.client_head(s, role), int(start * 1e9),
                                 int((start + (s.latency_ms or 0.0) / 1000) * 1e9), a))
    start = rec.started + off
    a = {REQUEST_ID: rec.request_id, IN_TOKENS: tin, OUT_TOKENS: tout, CACHE_TOKENS: tcache or None,
         TTFT: rec.ttft_ms / 1000 if rec.stream and rec.ttft_ms else None, COST: total or None,
         REFERENCE_COST: None if rec.reference_cost is None else float(rec.reference_cost)}
    if rec.content is not None:
        a["gen_ai.input.messages"] = scrub_cut(rec.content, MAX_CONTENT)
    server = wire.span(tid, sid, parent or None, enc.server_head(rec), int(start * 1e9),
                       int((start + rec.latency_ms / 1000) * 1e9), a, events)
    return [server, *clients]


def call(name: str, model: str, provider: str, locality: str, **kw: Any) -> Step:
    return Step("call", name, model=model, provider=provider, locality=locality, **kw)


def record(steps: list[Step], *, rid: str = "req_0123456789abcdef01234567", route: str = "main",
           model: str = "main", stream: bool = False, ttft: float | None = None, status: int = 200,
           error: str = "none", ref: float | None = None, content: str | None = None,
           traceparent: str | None = None, latency: float = 12.5) -> Finished:
    ids = new_ids(traceparent, 1.0)
    ids[CALLS] = {}
    for i, s in enumerate(steps):  # as the upstream calls filed them
        if s.kind == "call":
            ids[CALLS][i] = span_id()
    answered = next((s for s in reversed(steps) if s.kind == "call" and s.ok and "role" not in s.detail), None)
    return Finished(rid, route, "openai", stream, status, error, latency, ttft, 1000.25, steps, answered, ref, model,
                    ids, content, {}, None, 0.0)


def varied() -> list[Finished]:
    recs = []
    for k, (n_in, n_out) in enumerate(itertools.product(TOKENS, [0, 5, 200, 70000])):
        s = call("frontier", "big-model", "cloud", "remote", ok=True, status=200, usage=Usage(n_in, n_out),
                 cost=n_in * 3e-6, latency_ms=7.25, ttft_ms=None, at=1000.5)
        recs.append(record([Step("decision", "main", reason="no rule matched -> default frontier", at=1000.3), s],
                           ref=0.5 if n_in % 2 else None, rid=f"req_{k:024x}"))
    recs.append(record([
        call("local", "qwen-local", "localsrv", "local", ok=True, status=200, usage=Usage(20, 4, cache_read_tokens=300),
             cost=None, latency_ms=None, ttft_ms=3.5, at=1000.4),
        Step("verdict", "arithmetic", ok=False, reason="2 + 2 = 5 is wrong ✗", score=0.25, at=1000.45),
        Step("verdict", "schema", ok=True, reason="", score=None, at=1000.46),
        Step("decision", "casc", reason="local failed (timeout): escalating to frontier", at=1000.47),
        call("frontier", "big-model", "cloud", "remote", ok=False, status=503, reason="provider 'cloud': overloaded",
             latency_ms=1.0, at=1000.5),
        call("frontier", "big-model", "cloud", "remote", ok=True, status=200, usage=Usage(2**40, 16384, 1),
             cost=1.5, latency_ms=100.0, ttft_ms=50.0, detail={"role": "advisor"}, at=1000.6),
        call("frontier", "big-model", "cloud", "remote", ok=True, status=200, usage=None, cost=0.0, latency_ms=2.0,
             at=1000.7),
    ], route="prüfung ✓", model="", stream=True, ttft=42.0, status=502, error="upstream_error", ref=2.0,
        content='[{"role":"user","parts":[{"type":"text","content":"hällo ' + "x" * 300 + '"}]}]',
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", rid="ид-" + "r" * 200))
    recs.append(record([], rid="", model="m" * 400, stream=True, ttft=0.0, latency=0.0))  # no steps at all
    return recs


def test_compiled_shapes_write_the_same_bytes_as_the_plain_encoder():
    enc = SpanEncoder(KINDS, 1.7e9)
    for rec in varied():
        got = []
        enc.spans_of(rec, got)
        want = reference(enc, rec)
        assert wire.request_of(RESOURCE, SCOPE, got) == wire.request(RESOURCE, SCOPE, want), rec.steps
    # and again from the caches
    for rec in varied():
        got = []
        enc.spans_of(rec, got)
        assert wire.request_of(RESOURCE, SCOPE, got) == wire.request(RESOURCE, SCOPE, reference(enc, rec))


def test_what_opentelemetry_proto_decodes():
    enc = SpanEncoder(KINDS, 1.7e9)
    recs = varied()
    body = wire.request_of(RESOURCE, SCOPE, enc.encode(recs))
    spans = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans
    assert len(spans) == sum(1 + sum(s.kind == "call" for s in r.steps) for r in recs)
    by_rid = {attrs(s.attributes).get(REQUEST_ID): s for s in spans if s.kind == 2}
    big = recs[-2]
    server = by_rid[big.request_id]
    a = attrs(server.attributes)
    assert server.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server.parent_span_id.hex() == "00f067aa0ba902b7" and server.span_id == big.ids[1]
    assert a["tierwise.route"] == "prüfung ✓" and a[IN_TOKENS] == 20 + 2**40 and a[CACHE_TOKENS] == 301
    assert a[TTFT] == 0.042 and a[COST] == 1.5 and a[REFERENCE_COST] == 2.0 and "hällo" in a["gen_ai.input.messages"]
    assert server.status.code == 2 and a["error.type"] == "upstream_error"
    assert [e.name for e in server.events] == ["gen_ai.evaluation.result"] * 2 + ["tierwise.decision"]
    assert attrs(server.events[0].attributes)["gen_ai.evaluation.explanation"] == "2 + 2 = 5 is wrong ✗"
    assert server.start_time_unix_nano == int((1000.25 + 1.7e9) * 1e9)
    children = [s for s in spans if s.parent_span_id == server.span_id]
    assert [c.span_id for c in children] == [big.ids[4][i] for i in (0, 4, 5, 6)]
    failed, advisor, bare = (attrs(c.attributes) for c in children[1:])
    assert failed["error.type"] and children[1].status.code == 2 and IN_TOKENS not in failed
    assert advisor["tierwise.role"] == "advisor" and advisor[IN_TOKENS] == 2**40 and advisor[OUT_TOKENS] == 16384
    assert bare[COST] == 0.0 and IN_TOKENS not in bare
    first = attrs(children[0].attributes)
    assert first[CACHE_TOKENS] == 300 and first[TTFT] == 0.0035 and COST not in first
    for r in recs[:36]:
        s = by_rid[r.request_id]
        (c,) = (c for c in spans if c.parent_span_id == s.span_id)
        u = r.steps[1].usage
        assert attrs(c.attributes)[IN_TOKENS] == u.input_tokens and attrs(s.attributes)[OUT_TOKENS] == u.output_tokens
        assert s.trace_id == c.trace_id == r.ids[0] and len(s.events) == 1


def test_a_call_that_sent_no_traceparent_gets_its_own_span_id():
    enc = SpanEncoder(KINDS, 0.0)
    steps = [call("local", "qwen-local", "localsrv", "local", ok=False, status=None, reason="circuit open", at=1.0),
             call("frontier", "big-model", "cloud", "remote", ok=True, status=200, usage=Usage(1, 2), at=2.0)]
    rec = record(steps)
    rec.ids[CALLS].clear()
    rec.ids[CALLS][1] = sent = span_id()
    spans = ExportTraceServiceRequest.FromString(wire.request_of(RESOURCE, SCOPE, enc.encode([rec]))) \
        .resource_spans[0].scope_spans[0].spans
    server, first, second = spans
    assert second.span_id == sent and first.span_id not in (sent, server.span_id, bytes(8))
    assert first.parent_span_id == second.parent_span_id == server.span_id


@pytest.mark.parametrize("maker", ["native", "pool"])
def test_ids_are_distinct_and_a_forked_worker_draws_its_own(maker, monkeypatch):
    """Both id makers: the C extension's generator (when built) and the pure-Python pool."""
    import os

    from tierwise.observability import tracecontext

    if maker == "pool":
        monkeypatch.setattr(tracecontext, "_native_record", None)
        monkeypatch.setattr(tracecontext, "_native_span_id", None)
    elif tracecontext._native_record is None:
        unavailable("the C extension (_spanids) was not built")

    seen = [new_ids(None, 1.0) for _ in range(600)]  # more than one draw of the pool
    spans = [i[1] for i in seen] + [i[5] for i in seen] + [span_id() for _ in range(300)]
    assert len({i[0] for i in seen}) == 600 and len(set(spans)) == 1500 and bytes(8) not in spans
    assert all(i[6] == f"00-{i[0].hex()}-{i[5].hex()}-01" for i in seen)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the next record it would hand out
        os.write(w, new_ids(None, 1.0)[0])
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(r, 16)
    assert child != new_ids(None, 1.0)[0] and len(child) == 16


@pytest.mark.parametrize("keep", [8, 14])
def test_a_key_the_cut_would_halve_is_not_shown_in_part(keep):
    """Reasons and captured content were cut to their limit before the scrub: a key crossing the cut lost the part
    that made it recognisable, and its first characters went to the trace collector (review29f)."""
    from types import SimpleNamespace

    from tierwise.observability.span_encoder import MAX_TEXT

    key = "sk-ant-api03-" + "Q7x9Lm2Pz8Vb4Nc6Kd1Rf5Tg3Hj0Wq" * 2
    enc = SpanEncoder(KINDS, 0.0)
    reason = "a" * (MAX_TEXT - keep - 1) + " " + key + " and more"
    body = enc.event_body(SimpleNamespace(kind="verdict", name="judge", score=0.0, ok=False, reason=reason))
    assert key[:keep].encode() not in body
    content = "b" * (MAX_CONTENT - keep - 1) + " " + key + " and more"
    assert key[:keep].encode() not in SpanEncoder._content_attr(SimpleNamespace(content=content))
