"""The metrics' C update (`_metricspack`, built at install by setup.py) against `Metrics.observe_python`: the
same /metrics exposition after varied real traffic (both APIs, streams, fallbacks, errors, an escalation with
verdicts, an advisor call, cache results, a budget refusal) and after hand-made records (privacy and budget
decisions, failed calls with breakers, label caps); for hostile field values the same exposition, the C side
either adding the record up itself or handing it to the Python code; no references or objects left behind.
Under CI=true the extension must have been built."""

from __future__ import annotations

import copy
import gc
import math
import os
import sys
import time
from types import SimpleNamespace
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from tests.doubles import Fail, Reply, ToolCall
from tests.gateway.conftest import ant, oai
from tests.harness import IN_CI, unavailable
from tests.observability.conftest import MSG, observed_routes
from tests.observability.test_span_encoder import call, record
from tierwise.canonical import Usage
from tierwise.observability import metrics as obs_metrics
from tierwise.observability.metrics import Metrics
from tierwise.trace import Step

ROUTES = ["main", "casc", "adv", "loc"]
MODELS = ["local", "frontier", "qwen-local", "big-model"]
PROVIDERS = ["localsrv", "cloud"]


def test_the_native_update_was_built_under_ci():
    if obs_metrics.native is None:
        if IN_CI or os.environ.get("CI") == "true":
            pytest.fail("tierwise.observability._metricspack did not build or load (setup.py ext_modules); "
                        "CI=true: the pure-Python update may not stand in silently")
        unavailable("the C metrics update was not built (no compiler at install?)")
    assert Metrics(10, routes=[], models=[], providers=[]).native is not None


def need_native() -> None:
    if obs_metrics.native is None:
        unavailable("the C metrics update was not built (no compiler at install?)")


def metrics(native: bool, cap: int = 100) -> Metrics:
    m = Metrics(cap, routes=ROUTES, models=MODELS, providers=PROVIDERS)
    m.use_native(native)
    return m


def exposition(m: Metrics) -> bytes:
    """/metrics' text, without the `_created` samples (when each series was first made: a clock time)."""
    m.flush()
    return b"\n".join(line for line in generate_latest(m.registry).split(b"\n")
                      if b"_created{" not in line and b"_created " not in line)


def replay(recs: list[Any], cap: int = 100) -> tuple[bytes, bytes, Metrics]:
    """The records through a C-updated and a Python-updated Metrics, twice each (memo misses, then hits)."""
    c, py = metrics(True, cap), metrics(False, cap)
    for _ in range(2):
        for r in recs:
            c.observe(r)
            py.observe(r)
    return exposition(c), exposition(py), c


def capture(g: Any, recs: list[Any]) -> None:
    m = g.gateway.observer.metrics
    seen = m.observe

    def observe(rec: Any) -> None:
        recs.append(rec)
        seen(rec)

    m.observe = observe


ON = {"observability": {"metrics": {"enabled": True}}}


def test_the_same_exposition_after_real_traffic(two_tier, openai_up, anthropic_up):
    need_native()
    recs: list[Any] = []
    g = two_tier(routes=observed_routes(), **ON)
    assert g.gateway.observer.metrics.native is not None  # the gateway updates its metrics in C
    capture(g, recs)
    anthropic_up.script(Reply(text="hello", usage=(10, 2)))
    oai(g).chat.completions.create(model="main", messages=MSG)
    anthropic_up.script(Reply(text="a b c", usage=(12, 3)))
    with ant(g).messages.stream(model="main", max_tokens=50, messages=MSG) as s:
        s.get_final_message()
    anthropic_up.script(Fail(500, "boom"))  # a fallback, streamed
    openai_up.script(Reply(text="local answer", usage=(7, 2)))
    assert list(oai(g).chat.completions.create(model="main", messages=MSG, stream=True))
    anthropic_up.script(Fail(429, "slow", retry_after=0.01))  # both fail
    openai_up.script(Fail(503, "down"))
    with pytest.raises(openai.APIStatusError):
        oai(g).chat.completions.create(model="main", messages=MSG)
    time.sleep(0.05)  # the 429 asked for a 0.01 s pause: past it, the cascade's escalation reaches the upstream
    openai_up.script(Reply(text="not sure", usage=(20, 4)))  # a cascade: a failed verdict, an escalation
    anthropic_up.script(Reply(text="6 * 7 = 42", usage=(40, 6)))
    oai(g).chat.completions.create(model="casc", messages=MSG)
    openai_up.script(Reply(text="6 * 7 = 42", usage=(20, 4)))  # a verdict that passes
    oai(g).chat.completions.create(model="casc", messages=MSG)
    openai_up.script(Reply(tool_calls=[ToolCall("advisor", {"question": "plan?"})]), Reply(text="Done."))
    anthropic_up.script(Reply(text="Step 1.", usage=(80, 8)))
    oai(g).chat.completions.create(model="adv", messages=MSG)

    usage = (40, 400)
    anthropic_up.default = Reply(text="paid answer", usage=usage)
    g2 = two_tier(routes={"main": ["frontier"], "loc": ["local"]}, cache={"enabled": True, "routes": {"loc": {}}},
                  budgets={"limits": [{"name": "cap", "usd": (usage[0] * 3 + usage[1] * 15) / 1e6 * 1.5}]}, **ON)
    capture(g2, recs)
    q = [{"role": "user", "content": "What is the capital of France?"}]
    for _ in range(2):  # a cache miss, then a hit
        oai(g2).chat.completions.create(model="loc", messages=q, temperature=0)
    for _ in range(3):  # the third is refused by the budget
        try:
            oai(g2).chat.completions.create(model="main", messages=MSG, max_tokens=500)
        except openai.RateLimitError:
            pass
    g.flush()
    g2.flush()
    assert g.gateway.observer.metrics.native.fallbacks == 0 and g2.gateway.observer.metrics.native.fallbacks == 0
    assert len(recs) == 12 and {r.cache for r in recs} >= {"hit", "miss"}
    assert any(r.error_type == "budget_exceeded" for r in recs)
    for cap in (2, 100):  # and with label values capped (`other`): names registered in the same order
        c, py, m = replay(recs, cap)
        assert c == py and m.native.fallbacks == 0
    assert b'tierwise_cache_lookups_total{result="hit"} 2.0' in c
    assert b'tierwise_budget_refusals_total{budget="cap"} 2.0' in c
    assert b'tierwise_escalations_total{route="casc"} 2.0' in c
    assert b'tierwise_verifier_verdicts_total{verdict="pass",verifier="arithmetic"} 2.0' in c


def breakers() -> dict[str, Any]:
    return {"frontier": SimpleNamespace(breaker=SimpleNamespace(state="open")),
            "local": SimpleNamespace(breaker=SimpleNamespace(state="half-open"))}


def made() -> list[Any]:
    """Hand-made records: what real traffic rarely shows."""
    recs = []
    for stream, ttft in ((False, None), (True, 3.5), (True, None)):
        steps = [
            Step("decision", "privacy", reason="kept local: email", detail={"privacy": {"action": "keep_local",
                                                                                      "classes": {"email": 2, "phone": 1}}}),
            Step("decision", "privacy", reason="redacted", detail={"privacy": {"action": "redact", "classes": ["iban"]}}),
            Step("decision", "privacy", reason="odd", detail={"privacy": {"action": "block", "classes": "ssn"}}),
            Step("decision", "privacy", reason="no detail", detail={"privacy": "x"}),
            Step("decision", "budget", reason="refused: over", detail={"action": "refuse", "budget": "team-a"}),
            Step("decision", "budget", reason="admitted", detail={"action": "admit"}),
            call("local", "qwen-local", "localsrv", "local", ok=False, status=None, reason="circuit open", latency_ms=0),
            call("local", "qwen-local", "localsrv", "local", ok=True, status=200, usage=Usage(3, 4, 5), cost=0,
                 latency_ms=3, ttft_ms=1.0),
            Step("verdict", "arithmetic", ok=False, reason="wrong", score=0.1),
            call("frontier", "big-model", "cloud", "remote", ok=False, status=503, reason="overloaded", latency_ms=2.0),
            call("frontier", "big-model", "cloud", "remote", ok=False, status=None, reason="read timed out"),
            call("frontier", "big-model", "cloud", "remote", ok=True, status=200, usage=Usage(2**60, 1, 0), cost=1e-3,
                 latency_ms=4.5, ttft_ms=2.5, detail={"role": "verify"}),
            call("frontier", "big-model", "cloud", "remote", ok=True, status=200, usage=Usage(7, 8, 0), cost=2e-3,
                 latency_ms=1e9, ttft_ms=math.inf),
            Step("decision", "rules", reason="rule 'x': model * -> frontier"),
            Step("decision", "weird kind"),
        ]
        recs.append(record(steps, stream=stream, ttft=ttft, ref=0.25, latency=7.0))
        recs[-1].breakers = breakers()
        recs[-1].cache = "semantic_hit"
    recs.append(record([], route="unknown-" + "r" * 200, model="m", latency=0.0))
    recs.append(record([Step("decision", "x", reason="y")], status=499, error="client_closed", latency=-1.0))
    for i in range(6):  # more names than a cap of 2 holds
        recs.append(record([Step("verdict", f"v{i}", ok=bool(i % 2), reason="r"),
                            call(f"dep{i}", f"model{i}", f"prov{i}", "remote", ok=True, status=200, usage=Usage(i, i),
                                 detail={"role": f"role{i}"})], route=f"route{i}"))
        recs[-1].cache = f"result{i}"
    return recs


def test_the_same_exposition_after_made_records():
    need_native()
    for cap in (3, 1, 100):
        c, py, m = replay(made(), cap)
        assert c == py and m.native.fallbacks == 0
    assert b'tierwise_privacy_actions_total{action="keep_local",data_class="phone"} 6.0' in c
    assert b'tierwise_breaker_state{deployment="frontier"} 2.0' in c


def test_a_declined_record_is_added_up_in_python():
    need_native()
    rec = made()[0]
    rec.steps[7].usage = Usage(2**2000, 1)  # past a double: C declines, Python raises half-way (as always)
    c, py = metrics(True), metrics(False)
    with pytest.raises(OverflowError):
        c.observe(rec)
    with pytest.raises(OverflowError):
        py.observe(rec)
    assert c.native.fallbacks == 1 and exposition(c) == exposition(py)
    rec.steps[7].usage = Usage(1, 2)
    rec.steps[8].name = ["unhashable"]  # a verdict name: the memo key cannot be made
    with pytest.raises(TypeError):
        c.observe(rec)
    with pytest.raises(TypeError):
        py.observe(rec)
    assert c.native.fallbacks == 2 and exposition(c) == exposition(py)


def test_updater_checks_its_arguments():
    need_native()
    u = obs_metrics.native.Updater.__new__(obs_metrics.native.Updater)
    with pytest.raises(RuntimeError):
        u.observe(made()[0])
    with pytest.raises(TypeError):
        obs_metrics.native.Updater({}, {}, {}, *[print] * 7, None, 3)  # the fallback is not callable
    with pytest.raises(TypeError):
        obs_metrics.native.Updater([], {}, {}, *[print] * 7, None, print)


# ------------------------------------------------------------------ hostile values

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 2**63, 2**1024, -1, 0, 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e300, -1e300, 5e-324]),
    st.text(max_size=20),
    st.sampled_from(["call", "verdict", "decision", "privacy", "budget", "local", "remote", "circuit open", "role",
                     "\ud800", "x" * 10_000, ""]),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["role", "action", "privacy", "budget"]), st.integers(), max_size=2),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.just(object()),
)
STEP_FIELDS = ["kind", "name", "ok", "reason", "model", "provider", "locality", "status", "usage", "cost",
               "latency_ms", "ttft_ms", "score", "detail"]
USAGE_FIELDS = ["input_tokens", "output_tokens", "cache_read_tokens"]
RECORD_FIELDS = ["route", "api", "stream", "status", "error_type", "latency_ms", "ttft_ms", "steps", "answered",
                 "reference_cost", "cache", "breakers"]


def base() -> Any:
    rec = made()[1]
    rec.steps = rec.steps[4:]  # a budget decision, failed and good calls, a verdict, a helper call
    return rec


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(["step", "one step", "usage", "record", "answered"]), field=st.integers(0, 100),
       value=HOSTILE)
def test_hostile_values_give_the_same_exposition(where, field, value):
    need_native()
    rec = base()
    if where == "step":  # the same value in every step
        for s in rec.steps:
            setattr(s, STEP_FIELDS[field % len(STEP_FIELDS)], value)
    elif where == "one step":
        setattr(rec.steps[field % len(rec.steps)], STEP_FIELDS[field % len(STEP_FIELDS)], value)
    elif where == "usage":
        setattr(next(s for s in rec.steps if s.usage is not None).usage, USAGE_FIELDS[field % len(USAGE_FIELDS)], value)
    elif where == "record":
        setattr(rec, RECORD_FIELDS[field % len(RECORD_FIELDS)], value)
    else:
        rec.answered = copy.copy(rec.answered)
        setattr(rec.answered, ["model", "provider", "locality"][field % 3], value)
    c, py = metrics(True, 3), metrics(False, 3)
    outcomes = []
    for m in (c, py):
        for _ in range(2):
            try:
                m.observe(rec)
                outcomes.append(None)
            except Exception as e:  # (the Python code's own exception, after the C side handed it over)
                outcomes.append(type(e))
    assert outcomes[:2] == outcomes[2:]
    try:
        want = exposition(py)
    except Exception as e:  # a value prometheus-client cannot add
        with pytest.raises(type(e)):
            exposition(c)
        return
    assert exposition(c) == want
    if c.native.fallbacks == 0:  # C added it up itself: no exception either
        assert outcomes == [None] * 4


# ------------------------------------------------------------------ references

def test_no_references_or_objects_left_behind():
    need_native()
    m = metrics(True, 3)
    good = made()
    bad = made()[:2]
    bad[0].steps[7].usage = Usage(2**2000, 1)
    bad[1].steps[8].name = ["unhashable"]
    watched = [*good, *bad] + [s for r in good for s in r.steps]
    watched += [s.usage for r in good for s in r.steps if s.usage is not None]

    def rounds(n: int) -> None:
        for _ in range(n):
            for r in good:
                m.observe(r)
            for r in bad:
                try:
                    m.observe(r)
                except Exception:
                    pass

    rounds(50)
    gc.collect()
    before = [sys.getrefcount(o) for o in watched]
    objects = len(gc.get_objects())
    rounds(2000)
    gc.collect()
    assert [sys.getrefcount(o) for o in watched] == before
    assert len(gc.get_objects()) - objects < 50
    assert m.native.fallbacks == 2 * 2050


# ------------------------------------------------------------------ the observer's record (`_finished`)

from tierwise.observability import observer as obs_observer  # noqa: E402
from tierwise.observability.observer import Finished, finished_record  # noqa: E402


def test_the_record_maker_was_built_under_ci():
    if obs_observer.native is None:
        if IN_CI or os.environ.get("CI") == "true":
            pytest.fail("tierwise.observability._finished did not build or load (setup.py ext_modules)")
        unavailable("the C record maker was not built (no compiler at install?)")


def maker() -> Any:
    if obs_observer.native is None:
        unavailable("the C record maker was not built (no compiler at install?)")
    return obs_observer.native.Maker(Finished, Finished.__slots__)


PRICES = {"main": (3.0, 15.0, 0.3, 3.75), "free": None}


def fields(rec: Any, prices: Any = PRICES) -> tuple[Any, ...]:
    memo_prices = dict(prices or {})

    def miss(route: str) -> Any:  # as Observer._ref_price: filed, then returned
        p = memo_prices[route] = (1.5, 2.5, 0.5, 1.0)
        return p

    memo = None if prices is None else (memo_prices, miss)
    return (memo, rec.request_id, rec.route, rec.api, rec.stream, rec.status, rec.error_type, rec.latency_ms,
            rec.ttft_ms, rec.started, rec.steps, rec.requested_model, rec.ids, rec.content, rec.breakers, rec.trace,
            rec.wall, rec.cache, rec.key)


def same_record(a: Any, b: Any) -> None:
    for n in Finished.__slots__:
        x, y = getattr(a, n), getattr(b, n)
        assert x is y or (type(x) is type(y) is float and x.hex() == y.hex()), n


def test_the_maker_makes_the_python_record():
    make = maker()
    for rec in made() + [*map(copy.copy, made())]:
        for route in ("main", "free", "elsewhere"):
            rec.route = route
            for prices in (PRICES, None):
                same_record(make(*fields(rec, prices)), finished_record(*fields(rec, prices)))
    rec = made()[0]
    rec.steps[-3].usage = Usage(123, 456, 7, 8)  # the last answered call, priced
    got = make(*fields(rec))
    assert got.answered is rec.steps[-3] and got.reference_cost == (123 * 3.0 + 456 * 15.0 + 7 * 0.3 + 8 * 3.75) / 1e6
    with pytest.raises(TypeError):
        make(*fields(rec)[:-1])
    with pytest.raises(TypeError):
        obs_observer.native.Maker(Usage, Usage.__slots__)  # not 20 slots


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(["step", "usage", "prices", "steps"]), field=st.integers(0, 100), value=HOSTILE)
def test_the_maker_on_hostile_values(where, field, value):
    make = maker()
    rec = made()[0]
    prices: Any = dict(PRICES)
    if where == "step":
        setattr(rec.steps[field % len(rec.steps)], ["kind", "ok", "detail", "usage"][field % 4], value)
    elif where == "usage":
        setattr(rec.steps[-3].usage, USAGE_FIELDS[field % 3] if field % 4 else "cache_write_tokens", value)
    elif where == "prices":
        prices["main"] = value if field % 2 else (3.0, value, 0.3, 3.75)
    else:
        rec.steps = value
    try:
        want = finished_record(*fields(rec, prices))
    except Exception as e:
        want = type(e)
    try:
        got = make(*fields(rec, prices))
    except Exception:  # a clean refusal: the observer then makes it in Python (`want`)
        return
    assert not isinstance(want, type)
    same_record(got, want)


# ------------------------------------------------------------------ Python code that changes what C is reading


def test_the_maker_when_a_step_empties_the_list_it_is_read_from():
    """A step's attribute code that shrinks `steps` while the maker walks it backwards: it stops as reversed()
    does (it read past the list's end: a segfault)."""
    make = maker()
    rec = made()[0]

    class Shrinks:
        @property
        def kind(self) -> str:
            rec.steps.clear()
            return "verdict"

    rec.steps = [Shrinks(), Shrinks(), Shrinks()]
    same_record(make(*fields(rec)), finished_record(*fields(rec)))


def test_the_updater_when_its_per_request_callback_empties_the_cells():
    """The per-request callback (`--workers`) runs after the additions: run between the cells' checks and the
    additions, one that emptied a cell made the C code write past a list's end (a segfault)."""
    need_native()
    m = metrics(False)
    rec = made()[0]
    m.observe(rec)  # the memos filled

    def empties() -> None:
        for cell in [*m._counts.values(), *m._hists.values()]:
            cell.clear()

    u = obs_metrics.native.Updater(
        m._req_memo, m._call_memo, m._misc_memo, m._req_miss, m._call_miss, m._verdict_miss, m._decision_miss,
        m._cache_miss, m._breaker_of, m._guard_cells, empties, m.observe_python)
    u.observe(rec)
    assert u.fallbacks == 0 and all(c == [] for c in m._counts.values())
