"""The span encoder's C writer (`_spanpack`, built at install by setup.py) against the pure-Python one:
the same bytes for the varied requests of test_span_encoder (and what opentelemetry-proto decodes
from them), and for hostile values — huge and negative integers, other types, surrogates, long
strings, None — either the same bytes or a clean Python exception, never a crash. Under CI=true the
extension must have been built: no silent fallback to the slower Python writer."""

from __future__ import annotations

import copy
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.harness import IN_CI, unavailable
from tests.observability.test_span_encoder import KINDS, RESOURCE, SCOPE, call, record, varied
from tierwise.canonical import Usage
from tierwise.observability import otlp_wire as wire
from tierwise.observability import span_encoder
from tierwise.observability.span_encoder import SpanEncoder
from tierwise.trace import Step


def test_the_native_writer_was_built_under_ci():
    """`pip install -e .` builds it (setup.py, optional so a machine without a compiler still installs);
    CI installs that way and must get it."""
    if span_encoder.native is None:
        if IN_CI or os.environ.get("CI") == "true":
            pytest.fail("tierwise.observability._spanpack did not build or load (setup.py ext_modules); "
                        "CI=true: the pure-Python fallback may not stand in silently")
        unavailable("the C span writer was not built (no compiler at install?)")
    assert SpanEncoder(KINDS, 0.0)._native is not None


@pytest.fixture
def enc() -> SpanEncoder:
    if span_encoder.native is None:
        unavailable("the C span writer was not built (no compiler at install?)")
    return SpanEncoder(KINDS, 1.7e9)


def native_bytes(enc: SpanEncoder, rec) -> bytes:
    out: list[bytes] = []
    enc._native(rec, out)
    assert len(out) == 1  # one bytes object per request
    return out[0]


def python_bytes(enc: SpanEncoder, rec) -> bytes:
    out: list[bytes] = []
    enc.spans_of_python(rec, out)
    return b"".join(out)


def test_native_and_python_writers_write_the_same_bytes(enc):
    for _ in range(2):  # shapes worked out, then from the caches
        for rec in varied():
            assert native_bytes(enc, rec) == python_bytes(enc, rec), rec.steps
    assert enc.fallbacks == 0


def test_what_opentelemetry_proto_decodes_from_the_native_writer(enc):
    recs = varied()
    got: list[bytes] = []
    for rec in recs:
        enc.spans_of(rec, got)
    assert enc.fallbacks == 0
    spans = ExportTraceServiceRequest.FromString(wire.request_of(RESOURCE, SCOPE, got)) \
        .resource_spans[0].scope_spans[0].spans
    assert len(spans) == sum(1 + sum(s.kind == "call" for s in r.steps) for r in recs)
    big = recs[-2]
    server = next(s for s in spans if s.span_id == big.ids[1])
    assert server.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736" and server.parent_span_id.hex() == "00f067aa0ba902b7"
    children = [s for s in spans if s.parent_span_id == server.span_id]
    assert [c.span_id for c in children] == [big.ids[4][i] for i in (0, 4, 5, 6)]
    assert [e.name for e in server.events] == ["gen_ai.evaluation.result"] * 2 + ["tierwise.decision"]


def test_a_record_the_native_writer_declines_is_written_in_python(enc):
    rec = varied()[0]
    rec.steps[1].usage = Usage(2**70, 5)  # past 64 bits: C declines, Python writes its varint
    got: list[bytes] = []
    enc.spans_of(rec, got)
    assert enc.fallbacks == 1 and b"".join(got) == python_bytes(enc, rec)
    with pytest.raises(TypeError):
        enc._native(rec, [])


def test_writer_checks_its_arguments():
    if span_encoder.native is None:
        unavailable("the C span writer was not built (no compiler at install?)")
    w = span_encoder.native.Writer.__new__(span_encoder.native.Writer)
    with pytest.raises(RuntimeError):  # never initialised
        w.write(varied()[0], [])
    enc = SpanEncoder(KINDS, 0.0)
    with pytest.raises(TypeError):
        enc._native(varied()[0], ())  # not a list
    with pytest.raises(TypeError):
        enc._native(varied()[0])
    with pytest.raises(ValueError):
        span_encoder.native.Writer(0.0, {}, {}, {}, *[print] * 6, "none", b"x" * 300, *[b""] * 6)


# ------------------------------------------------------------------ hostile values

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 2**53, 2**53 + 1, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e300, -1e300, 5e-324]),
    st.text(max_size=50),
    st.sampled_from(["\ud800", "a\udfffb", "x" * 100_000, "é" * 5000, "", "\x00"]),
    st.binary(max_size=40),
    st.sampled_from([b"", bytes(8), bytes(16), b"\xff" * 8]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.just(object()),
)

STEP_FIELDS = ["kind", "name", "ok", "reason", "model", "provider", "locality", "status", "usage", "cost",
               "latency_ms", "ttft_ms", "score", "detail", "at"]
USAGE_FIELDS = ["input_tokens", "output_tokens", "cache_read_tokens"]
RECORD_FIELDS = ["request_id", "route", "api", "stream", "status", "error_type", "latency_ms", "ttft_ms", "started",
                 "steps", "answered", "reference_cost", "requested_model", "ids", "content"]
ID_SLOTS = [0, 1, 2, 4]


def base_record():
    steps = [
        Step("decision", "main", reason="no rule matched -> default", at=1000.3),
        call("local", "qwen-local", "localsrv", "local", ok=False, status=503, reason="overloaded", latency_ms=1.0,
             at=1000.4),
        call("frontier", "big-model", "cloud", "remote", ok=True, status=200, usage=Usage(300, 20, 5), cost=3e-4,
             latency_ms=7.25, ttft_ms=2.0, at=1000.5),
        Step("verdict", "schema", ok=True, reason="ok", score=0.5, at=1000.6),
    ]
    return record(steps, stream=True, ttft=4.0, ref=0.01)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(["step", "usage", "record", "ids", "calls"]), field=st.integers(0, 100), value=HOSTILE)
def test_hostile_values_give_the_same_bytes_or_a_clean_exception(where, field, value):
    if span_encoder.native is None:
        unavailable("the C span writer was not built (no compiler at install?)")
    rec = base_record()
    if where == "step":  # the same value in every step (so equal cache keys mean equal values)
        name = STEP_FIELDS[field % len(STEP_FIELDS)]
        for s in rec.steps:
            setattr(s, name, value)
    elif where == "usage":
        setattr(rec.steps[2].usage, USAGE_FIELDS[field % len(USAGE_FIELDS)], value)
    elif where == "record":
        setattr(rec, RECORD_FIELDS[field % len(RECORD_FIELDS)], value)
    elif where == "ids":
        rec.ids[ID_SLOTS[field % len(ID_SLOTS)]] = value
    else:
        rec.ids[4][2] = value  # the frontier call's span id
    twin = copy.copy(rec)  # the Python writer gets its own encoder (its caches start empty too)
    drawn = span_encoder.span_id  # a call without a filed span id draws one: the same for both writers here
    span_encoder.span_id = lambda: b"\x5a" * 8
    try:
        native_enc, python_enc = SpanEncoder(KINDS, 1.7e9), SpanEncoder(KINDS, 1.7e9)
        check(native_enc, python_enc, rec, twin)
    finally:
        span_encoder.span_id = drawn


def check(native_enc: SpanEncoder, python_enc: SpanEncoder, rec, twin) -> None:
    try:
        got = native_bytes(native_enc, rec)
    except Exception:
        got = None  # a clean exception: the encoder then writes the record in Python
    try:
        want = python_bytes(python_enc, twin)
    except Exception:
        want = None
    if got is not None:
        assert got == want
    # and through the encoder's entry point: the Python writer's bytes, or its exception
    out: list[bytes] = []
    try:
        native_enc.spans_of(rec, out)
    except Exception:
        assert want is None
    else:
        assert b"".join(out) == want


def test_attribute_reads_follow_python_when_classes_differ_or_change(enc):
    """The C writer reads slots by offset only for plain slotted classes, and re-checks a class changed
    since (its version tag): a property, a changed class, a member descriptor of another class all read as
    Python reads them."""

    class CostlyStep(Step):  # a property over a slot of the base class
        __slots__ = ()

        @property
        def cost(self) -> float:
            return 0.125

    rec = base_record()
    rec.steps[2].__class__ = CostlyStep
    assert native_bytes(enc, rec) == python_bytes(enc, rec)

    class Counts:
        __slots__ = ("input_tokens", "output_tokens", "cache_read_tokens")

        def __init__(self) -> None:
            self.input_tokens, self.output_tokens, self.cache_read_tokens = 3, 4, 0

    rec = base_record()
    rec.steps[2].usage = Counts()
    first = native_bytes(enc, rec)
    assert first == python_bytes(enc, rec)
    Counts.input_tokens = property(lambda self: 999)  # the class changes after the writer cached its slots
    assert native_bytes(enc, rec) == python_bytes(enc, rec) != first

    class Impostor:  # another class's member descriptor: getattr refuses it, so must the writer
        __slots__ = ("x",)
        input_tokens = output_tokens = cache_read_tokens = Usage.__dict__["input_tokens"]

    rec.steps[2].usage = Impostor()
    with pytest.raises(TypeError):
        enc._native(rec, [])
    with pytest.raises(TypeError):
        enc.spans_of_python(rec, [])


def test_a_call_span_id_whose_truth_drops_it(enc):
    """The upstream call's span id is read from `ids[CALLS]` and tested for truth, which can run code that drops
    it from that dict: the writer holds its own reference first (it used a freed object: a crash)."""
    rec = varied()[0]
    calls = rec.ids[4]
    index = next(i for i, s in enumerate(rec.steps) if s.kind == "call")

    class Drops:
        def __bool__(self) -> bool:
            del calls[index]
            return True

    calls[index] = Drops()
    with pytest.raises(TypeError):  # not 8 bytes: declined, and the Python writer refuses it too
        enc._native(rec, [])
    assert index not in calls
