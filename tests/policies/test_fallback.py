import random

import pytest

from tests.fakes import FakeTarget, context, fail, request
from tierwise.errors import InvalidRequest, Overloaded, UpstreamError
from tierwise.policies.fallback import Fallback


def fb(*targets, retries=1):
    return Fallback("main", list(targets), retries=retries, backoff_base=0.001, backoff_max=0.002,
                    rng=random.Random(1))


async def test_falls_back_on_5xx_and_records_reason():
    a, b = FakeTarget("a", fail(503), fail(503)), FakeTarget("b", "from b")
    ctx = context()
    resp = await fb(a, b).complete(request(), ctx)
    assert resp.text() == "from b"
    assert len(a.calls) == 2 and len(b.calls) == 1  # one retry of a, then b
    assert "fell back to b" in ctx.trace.reason


async def test_retry_after_is_honoured(monkeypatch):
    slept = []

    async def fake_sleep(s):
        slept.append(s)

    monkeypatch.setattr("tierwise.policies.fallback.asyncio.sleep", fake_sleep)
    a = FakeTarget("a", fail(503, retry_after=2.5), "second try")
    resp = await fb(a).complete(request(), context())
    assert resp.text() == "second try" and slept == [2.5]


async def test_a_rate_limit_is_not_retried_on_the_same_target(monkeypatch):
    """The client hears the 429 and its SDK retries after Retry-After: a retry here too doubled the calls."""
    slept = []

    async def fake_sleep(s):
        slept.append(s)

    monkeypatch.setattr("tierwise.policies.fallback.asyncio.sleep", fake_sleep)
    a, b = FakeTarget("a", fail(429, retry_after=1), "second try"), FakeTarget("b", "from b")
    resp = await fb(a, b).complete(request(), context())
    assert resp.text() == "from b" and len(a.calls) == 1 and slept == []
    a = FakeTarget("a", fail(429, retry_after=1), "second try")
    with pytest.raises(UpstreamError) as e:
        await fb(a).complete(request(), context())
    assert e.value.status == 429 and e.value.retry_after == 1 and len(a.calls) == 1


async def test_retry_after_too_long_moves_on(monkeypatch):
    slept = []

    async def fake_sleep(s):
        slept.append(s)

    monkeypatch.setattr("tierwise.policies.fallback.asyncio.sleep", fake_sleep)
    a, b = FakeTarget("a", fail(429, retry_after=3600)), FakeTarget("b", "b")
    resp = await fb(a, b).complete(request(), context())
    assert resp.text() == "b" and slept == []


async def test_backoff_grows_exponentially_with_jitter(monkeypatch):
    slept = []

    async def fake_sleep(s):
        slept.append(s)

    monkeypatch.setattr("tierwise.policies.fallback.asyncio.sleep", fake_sleep)
    a = FakeTarget("a", fail(502), fail(502), fail(502), "ok")
    f = Fallback("main", [a], retries=3, backoff_base=1.0, backoff_max=100, rng=random.Random(7))
    await f.complete(request(), context())
    assert len(slept) == 3
    assert 0 <= slept[0] <= 1 and 0 <= slept[1] <= 2 and 0 <= slept[2] <= 4


async def test_client_fault_is_not_retried():
    err = UpstreamError("bad", upstream_status=400, retryable=False, status=400)
    a, b = FakeTarget("a", err), FakeTarget("b")
    with pytest.raises(UpstreamError):
        await fb(a, b).complete(request(), context())
    assert b.calls == []


async def test_all_fail_is_overloaded():
    a, b = FakeTarget("a", fail(), fail()), FakeTarget("b", fail(), fail())
    with pytest.raises(Overloaded) as e:
        await fb(a, b).complete(request(), context())
    assert e.value.status == 503


async def test_stream_falls_back_before_first_chunk():
    a, b = FakeTarget("a", fail(503), fail(503)), FakeTarget("b", "streamed words")
    it = await fb(a, b).stream(request(), context())
    chunks = [c async for c in it]
    text = "".join(ev.value for c in chunks for ev in c.events if getattr(ev, "delta_type", None) == "text")
    assert text == "streamedwords"


async def test_non_upstream_errors_propagate():
    a = FakeTarget("a", InvalidRequest("nope"))
    with pytest.raises(InvalidRequest):
        await fb(a).complete(request(), context())


async def test_every_target_failed_says_why_each_target_failed():
    # Before: only the last target's error ("cannot connect to ollama"), hiding that the first
    # target had no API key, which is what a first-time user must fix.
    no_key = UpstreamError("provider 'anthropic' has no API key: set the environment variable ANTHROPIC_API_KEY",
                           status=503, retryable=False)
    a, b = FakeTarget("claude-sonnet", no_key), FakeTarget("local", fail(502), fail(502))
    with pytest.raises(Overloaded) as e:
        await fb(a, b).complete(request(), context())
    msg = e.value.message
    assert msg.startswith("route 'main': every target failed")
    assert "claude-sonnet: provider 'anthropic' has no API key" in msg and "local: HTTP 502" in msg
