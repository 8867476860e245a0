"""Draft-and-verify: one short frontier check per draft; accept, or hand over to on_reject."""

import pytest

from tests.escalation.scripted import Digits, Scripted, chain, collect, step_names, text_of
from tests.fakes import context, fail, request
from tierwise.policies.draft_verify import DraftVerify, parse_check


def dv(draft, checker, on_reject, **kw):
    return DraftVerify("dv", draft, checker, on_reject, **kw)


async def test_accepted_draft_is_returned_after_one_short_check():
    local, checker, fallback = Scripted("local", "Paris"), Scripted("frontier", "YES"), Scripted("cascade", "x")
    ctx = context()
    resp = await dv(local, checker, fallback).complete(request("capital of France?"), ctx)
    assert resp.text() == "Paris"
    assert fallback.calls == []
    check = checker.calls[0]
    assert check.max_tokens == 16 and check.temperature == 0.0
    assert "capital of France?" in check.messages[0].text() and "Paris" in check.messages[0].text()
    assert "exactly one word" in check.system[0].text
    assert step_names(ctx) == ["call:local", "call:frontier", "verdict:frontier", "decision:dv"]
    assert ctx.trace.decision == "local"
    assert ctx.trace.steps[1].detail["role"] == "verify"  # the check is overhead, not the answer
    assert "role" not in ctx.trace.steps[0].detail


async def test_rejected_draft_goes_to_on_reject():
    local, checker, fallback = Scripted("local", "Lyon"), Scripted("frontier", "NO, wrong city"), Scripted(
        "cascade", "Paris")
    ctx = context()
    resp = await dv(local, checker, fallback).complete(request("capital of France?"), ctx)
    assert resp.text() == "Paris"
    assert len(fallback.calls) == 1
    assert [s.name for s in ctx.trace.calls()] == ["local", "frontier", "cascade"]
    verdict = next(s for s in ctx.trace.steps if s.kind == "verdict")
    assert verdict.ok is False and "wrong city" in verdict.reason
    assert "rejected the draft" in ctx.trace.reason
    assert ctx.trace.decision == "cascade"  # who answered, not the draft's author


async def test_unreadable_verdict_counts_as_rejection_by_default():
    local, checker, fallback = Scripted("local", "a"), Scripted("frontier", "Hmm, hard to say"), Scripted("c", "b")
    resp = await dv(local, checker, fallback).complete(request(), context())
    assert resp.text() == "b"
    local.script, checker.script, fallback.script = ["a"], ["Hmm, hard to say"], ["b"]
    resp = await dv(local, checker, fallback, accept_unparseable=True).complete(request(), context())
    assert resp.text() == "a"


async def test_json_verdict_format():
    local, checker = Scripted("local", "4"), Scripted("frontier", '```json\n{"ok": false, "reason": "off by one"}\n```')
    fallback = Scripted("c", "5")
    ctx = context()
    resp = await dv(local, checker, fallback, verdict_format="json", check_max_tokens=40).complete(request(), ctx)
    assert resp.text() == "5"
    assert "JSON object" in checker.calls[0].system[0].text and checker.calls[0].max_tokens == 40
    assert "off by one" in next(s for s in ctx.trace.steps if s.kind == "verdict").reason


async def test_failed_check_call_falls_back():
    local, checker, fallback = Scripted("local", "a"), Scripted("frontier", fail(503)), Scripted("c", "b")
    ctx = context()
    assert (await dv(local, checker, fallback).complete(request(), ctx)).text() == "b"
    assert "check by frontier failed" in ctx.trace.steps[-2].reason


async def test_precheck_failure_skips_the_frontier_check():
    local, checker, fallback = Scripted("local", "no number"), Scripted("frontier", "YES"), Scripted("c", "7")
    resp = await dv(local, checker, fallback, prechecks=chain(Digits())).complete(request(), context())
    assert resp.text() == "7" and checker.calls == []


async def test_stream_only_after_acceptance():
    local, checker, fallback = Scripted("local", "bad"), Scripted("frontier", "no"), Scripted("c", "good answer")
    it = await dv(local, checker, fallback).stream(request(stream=True), context())
    assert text_of(await collect(it)) == "good answer"
    assert not local.calls[0].stream


@pytest.mark.parametrize(
    "text, accepted",
    [
        ("YES", True), ("yes.", True), ("Yes, the answer is right", True), ("**YES**", True),
        ("NO", False), ("no - wrong unit", False), ('{"ok": true}', True), ('{"ok": "no", "reason": "x"}', False),
        ('Sure: {"verdict": "yes"}', True), ("<think>maybe no</think>YES", True),
        ("After checking, the answer is NO.", False), ('{"accepted": false}', False),
        ("", None), ("perhaps", None), ('{"ok": 3}', None),
    ],
)
def test_parse_check(text, accepted):
    assert parse_check(text).accepted is accepted
