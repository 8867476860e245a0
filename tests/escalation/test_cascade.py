"""Cascade as a library object: the right tiers in the right order, escalation exactly when a
verifier fails, the escalation cap, what the stronger tier sees, and verified streaming."""

import pytest

from tests.escalation.scripted import Digits, Scripted, chain, collect, step_names, text_of
from tests.fakes import context, fail, request
from tierwise.canonical import MessageStop
from tierwise.errors import UpstreamError
from tierwise.policies.cascade import Cascade


def cascade(*tiers, verifiers=None, **kw):
    return Cascade("main", list(tiers), chain(*(verifiers if verifiers is not None else [Digits()])), **kw)


async def test_passing_draft_is_returned_without_escalation():
    local, frontier = Scripted("local", "the answer is 42"), Scripted("frontier", "41")
    ctx = context()
    resp = await cascade(local, frontier).complete(request("what is 6*7?"), ctx)
    assert resp.text() == "the answer is 42"
    assert len(local.calls) == 1 and frontier.calls == []
    assert step_names(ctx) == ["call:local", "verdict:digits", "decision:main"]
    assert ctx.trace.decision == "local" and "passed verification" in ctx.trace.reason


async def test_failed_verdict_escalates_to_next_tier_with_original_request():
    local, frontier = Scripted("local", "no idea"), Scripted("frontier", "42")
    ctx = context()
    req = request("what is 6*7?")
    resp = await cascade(local, frontier).complete(req, ctx)
    assert resp.text() == "42"
    assert len(local.calls) == 1 and len(frontier.calls) == 1
    assert [m.text() for m in frontier.calls[0].messages] == ["what is 6*7?"]
    assert step_names(ctx) == ["call:local", "verdict:digits", "decision:main", "call:frontier", "decision:main"]
    assert ctx.trace.header_summary().startswith("call:local:ok,verdict:digits:fail,decision:main:-,call:frontier:ok")
    assert ctx.trace.decision == "frontier"
    esc = ctx.trace.steps[2]
    assert "escalating to frontier" in esc.reason and esc.detail["escalation"] == 1


async def test_with_draft_shows_the_draft_and_the_reason():
    local, frontier = Scripted("local", "no idea"), Scripted("frontier", "42")
    await cascade(local, frontier, escalation_context="with_draft").complete(request("6*7?"), context())
    sent = frontier.calls[0].messages
    assert [m.role for m in sent] == ["user", "assistant", "user"]
    assert sent[1].text() == "no idea"
    assert "rejected by an automatic check" in sent[2].text() and "no digits" in sent[2].text()


async def test_every_tier_checked_in_order_until_one_passes():
    a, b, c = Scripted("a", "nope"), Scripted("b", "still no"), Scripted("c", "7")
    ctx = context()
    resp = await cascade(a, b, c).complete(request(), ctx)
    assert resp.text() == "7"
    assert [s.name for s in ctx.trace.calls()] == ["a", "b", "c"]
    assert [s.ok for s in ctx.trace.steps if s.kind == "verdict"] == [False, False]


async def test_escalation_cap_holds_and_returns_last_answer_unverified():
    a, b, c = Scripted("a", "nope"), Scripted("b", "still no"), Scripted("c", "7")
    ctx = context()
    resp = await cascade(a, b, c, max_escalations=1).complete(request(), ctx)
    assert resp.text() == "still no"
    assert c.calls == []
    assert "cap (1) reached" in ctx.trace.reason
    assert ctx.trace.steps[-1].detail["verified"] is False


async def test_cap_of_zero_never_escalates():
    a, b = Scripted("a", "nope"), Scripted("b", "1")
    resp = await cascade(a, b, max_escalations=0).complete(request(), context())
    assert resp.text() == "nope" and b.calls == []


async def test_last_tier_not_verified_unless_asked():
    a, b = Scripted("a", "nope"), Scripted("b", "none either")
    ctx = context()
    await cascade(a, b).complete(request(), ctx)
    assert [s.name for s in ctx.trace.steps if s.kind == "verdict"] == ["digits"]
    ctx = context()
    a.script, b.script = ["nope"], ["none either"]
    await cascade(a, b, verify_last=True).complete(request(), ctx)
    assert [s.ok for s in ctx.trace.steps if s.kind == "verdict"] == [False, False]
    assert "failed verification" in ctx.trace.reason


async def test_upstream_failure_escalates_like_a_failed_verdict():
    a, b = Scripted("a", fail(503)), Scripted("b", "3")
    ctx = context()
    resp = await cascade(a, b).complete(request(), ctx)
    assert resp.text() == "3"
    assert "a failed" in ctx.trace.steps[1].reason


async def test_request_errors_are_not_escalated():
    a, b = Scripted("a", fail(400)), Scripted("b", "3")
    with pytest.raises(UpstreamError):
        await cascade(a, b).complete(request(), context())
    assert b.calls == []


async def test_arithmetic_verifier_catches_a_wrong_equation():
    a, b = Scripted("a", "12 * 3 = 38, so 38 apples"), Scripted("b", "12 * 3 = 36, so 36 apples")
    ctx = context()
    from tierwise.verifiers import build_chain

    c = Cascade("main", [a, b], build_chain([{"type": "arithmetic"}]))
    resp = await c.complete(request(), ctx)
    assert resp.text().endswith("36 apples")
    verdict = next(s for s in ctx.trace.steps if s.kind == "verdict")
    assert verdict.ok is False and verdict.name == "arithmetic"


async def test_verified_stream_replays_only_the_verified_answer():
    local, frontier = Scripted("local", "wrong words"), Scripted("frontier", "right 42")
    ctx = context()
    it = await cascade(local, frontier).stream(request(stream=True), ctx)
    events = await collect(it)
    text = text_of(events)
    assert text == "right 42"
    assert isinstance(events[-1], MessageStop)
    # buffered: both tiers answered whole (no upstream stream opened), and the draft never streamed
    assert local.streams == 0 and frontier.streams == 0
    assert not local.calls[0].stream and ctx.notes["buffered_stream"] is True


async def test_unverified_route_streams_directly():
    local, frontier = Scripted("local", "hello there"), Scripted("frontier", "x")
    ctx = context()
    it = await cascade(local, frontier, verifiers=[]).stream(request(stream=True), ctx)
    text = text_of(await collect(it))
    assert text == "hello there" and local.streams == 1 and frontier.calls == []
    assert "buffered_stream" not in ctx.notes


async def test_streaming_opt_out_skips_verification():
    local, frontier = Scripted("local", "no digits"), Scripted("frontier", "1")
    it = await cascade(local, frontier, verify_streams=False).stream(request(stream=True), context())
    text = text_of(await collect(it))
    assert text == "no digits" and frontier.calls == []


async def test_unverified_stream_moves_on_when_first_tier_cannot_start():
    local, frontier = Scripted("local", fail(503)), Scripted("frontier", "from frontier")
    it = await cascade(local, frontier, verifiers=[]).stream(request(stream=True), context())
    text = text_of(await collect(it))
    assert text == "from frontier"


class BrokenJudge:
    """A verifier that cannot run: its judge's upstream is down."""

    name = "judge"

    async def __call__(self, req, resp, ctx):
        raise UpstreamError("judge upstream returned 503", retryable=True)


async def test_a_verifier_that_cannot_run_escalates_instead_of_failing_the_request():
    local, frontier = Scripted("local", "the answer is 42"), Scripted("frontier", "42")
    ctx = context()
    resp = await cascade(local, frontier, verifiers=[BrokenJudge()]).complete(request("what is 6*7?"), ctx)
    assert resp.text() == "42" and len(frontier.calls) == 1
    verdict = next(s for s in ctx.trace.steps if s.kind == "verdict")
    assert verdict.ok is False and "could not check (UpstreamError)" in verdict.reason


def test_long_digit_runs_and_unclosed_fences_are_handled_in_bounded_work():
    from tierwise.verifiers.arithmetic import find_equations
    from tierwise.verifiers.text import fenced_blocks

    # Both used to backtrack without bound (minutes for these inputs): a digit run that the span
    # pattern could split in exponentially many ways, and a fence line that never ends.
    assert find_equations("pi is about 3.14159265358979323846264338 and 2 + 2 = 4 here") == find_equations("2 + 2 = 4")
    assert fenced_blocks("```" + "a" * 200_000) == []
