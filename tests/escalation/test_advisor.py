"""Advisor: the executor loop, consultations with the conversation so far, max_uses, separate
accounting, the client's Anthropic advisor tool (native pass-through or emulation)."""

from tests.escalation.scripted import Scripted, answer, collect, text_of
from tests.fakes import context, fail, request
from tierwise.canonical import Message, OtherBlock, TextBlock, Tool, ToolResultBlock, ToolUseBlock
from tierwise.policies.advisor import Advisor, lower_advisor_blocks
from tierwise.policies.escalation import response_events

ASK = ("advisor", {"question": "which algorithm?"})


def advisor_policy(executor, adv, **kw):
    return Advisor("adv", executor, adv, **kw)


async def test_executor_consults_advisor_then_finishes():
    executor = Scripted("local", answer("Let me ask.", ASK), answer("Use quicksort, done."))
    adv = Scripted("frontier", "Quicksort fits: data is in memory.", cost=0.01)
    ctx = context()
    resp = await advisor_policy(executor, adv).complete(request("sort 1e6 ints"), ctx)
    # order of calls: executor, advisor, executor
    assert [s.name for s in ctx.trace.calls()] == ["local", "frontier", "local"]
    # the executor saw the advisor tool and then got the advice as the tool result
    assert any(t.name == "advisor" for t in executor.calls[0].tools)
    second = executor.calls[1].messages
    assert [m.role for m in second] == ["user", "assistant", "user"]
    result = second[2].content[0]
    assert isinstance(result, ToolResultBlock) and result.content[0].text == "Quicksort fits: data is in memory."
    # the advisor saw the conversation so far and the question
    prompt = adv.calls[0].messages[0].text()
    assert "sort 1e6 ints" in prompt and "which algorithm?" in prompt and "Let me ask." in prompt
    # the answer carries Anthropic's advisor blocks, then the final text
    kinds = [(b.type, getattr(b, "server", None)) for b in resp.content]
    assert kinds == [("text", None), ("tool_use", True), ("other", None), ("text", None)]
    srv, res = resp.content[1], resp.content[2]
    assert isinstance(srv, ToolUseBlock) and srv.input == {} and srv.id.startswith("srvtoolu_")
    assert isinstance(res, OtherBlock) and res.raw == {
        "type": "advisor_tool_result", "tool_use_id": srv.id,
        "content": {"type": "advisor_result", "text": "Quicksort fits: data is in memory."}}
    assert resp.stop_reason == "end_turn" and resp.usage.input_tokens == 20  # executor tokens only
    # advisor usage and cost reported separately
    final = ctx.trace.steps[-1]
    assert final.detail["advisor_uses"] == 1 and final.detail["advisor_cost"] == 0.01
    assert final.detail["advisor_input_tokens"] == 10 and final.detail["executor_input_tokens"] == 20
    assert ctx.trace.calls()[1].detail["role"] == "advisor"
    assert ctx.trace.decision == "local"


async def test_max_uses_holds():
    executor = Scripted("local", answer("", ASK), answer("", ASK), answer("", ASK), answer("finished"))
    adv = Scripted("frontier", default="advice")
    ctx = context()
    resp = await advisor_policy(executor, adv, max_uses=1).complete(request(), ctx)
    assert len(adv.calls) == 1 and len(executor.calls) == 4
    refused = executor.calls[2].messages[-1].content[0]
    assert isinstance(refused, ToolResultBlock) and refused.is_error and "max_uses" in refused.content[0].text
    errors = [b.raw["content"] for b in resp.content if isinstance(b, OtherBlock)]
    assert errors[0]["type"] == "advisor_result"
    assert errors[1] == {"type": "advisor_tool_result_error", "error_code": "max_uses_exceeded"}
    assert ctx.trace.steps[-1].detail["advisor_uses"] == 1


async def test_executor_loop_cap():
    executor = Scripted("local", default=answer("", ASK))
    adv = Scripted("frontier", default="advice")
    ctx = context()
    await advisor_policy(executor, adv, max_uses=10, max_turns=3).complete(request(), ctx)
    assert len(executor.calls) == 3 and "loop cap (3 turns)" in ctx.trace.reason


async def test_no_consultation_needed():
    executor, adv = Scripted("local", "simple answer"), Scripted("frontier")
    ctx = context()
    resp = await advisor_policy(executor, adv).complete(request(), ctx)
    assert resp.text() == "simple answer" and adv.calls == []
    assert ctx.trace.steps[-1].detail["advisor_uses"] == 0


async def test_advisor_failure_lets_executor_continue():
    executor = Scripted("local", answer("", ASK), answer("did it alone"))
    adv = Scripted("frontier", fail(503))
    resp = await advisor_policy(executor, adv).complete(request(), context())
    assert resp.text() == "did it alone"
    assert executor.calls[1].messages[-1].content[0].is_error


async def test_compression_by_local_model():
    executor = Scripted("local", answer("", ASK), answer("done"))
    compressor = Scripted("small", "SUMMARY: user wants sorting")
    adv = Scripted("frontier", "advice")
    ctx = context()
    await advisor_policy(executor, adv, compress=True, compressor=compressor).complete(request("long story"), ctx)
    assert "long story" in compressor.calls[0].messages[0].text()
    assert "SUMMARY: user wants sorting" in adv.calls[0].messages[0].text()
    assert "long story" not in adv.calls[0].messages[0].text()
    assert [s.detail.get("role") for s in ctx.trace.calls()] == [None, "summary", "advisor", None]


async def test_client_tool_calls_go_back_to_the_client():
    executor = Scripted("local", answer("", ASK, ("read_file", {"path": "a.py"})))
    adv = Scripted("frontier", "read a.py first")
    req = request("fix bug", tools=[Tool("read_file")])
    resp = await advisor_policy(executor, adv).complete(req, context())
    assert resp.stop_reason == "tool_use"
    assert [b.name for b in resp.tool_uses() if not b.server] == ["read_file"]


def _client_tool(**kw):
    return Tool("advisor", raw={"type": "advisor_20260301", "name": "advisor", **kw})


async def test_client_advisor_tool_is_emulated_with_its_model_and_max_uses():
    executor = Scripted("local", answer("", ASK), answer("", ASK), answer("ok"))
    configured, named = Scripted("frontier", default="a"), Scripted("opus", default="b")
    ctx = context({"claude-opus-4-6": named})
    req = request("task", tools=[_client_tool(model="claude-opus-4-6", max_uses=1)])
    await advisor_policy(executor, configured, max_uses=5).complete(req, ctx)
    assert len(named.calls) == 1 and configured.calls == []
    # the raw server tool is not sent to a non-Anthropic executor; the function tool is
    sent = executor.calls[0].tools
    assert [t.name for t in sent] == ["advisor"] and sent[0].raw is None


class _Anthropic:
    kind = "anthropic"


def _anthropic(target, model):
    target.provider = _Anthropic()
    target.cfg = type("Cfg", (), {"model": model})()
    return target


async def test_client_advisor_tool_passes_through_to_an_anthropic_executor():
    """Natively with the route's advisor (its upstream model id) and at most its max_uses: a model the client
    names that is not configured here would be billed to the operator's key."""
    executor = _anthropic(Scripted("claude-haiku", "native answer"), "claude-haiku-4-5")
    adv = _anthropic(Scripted("frontier"), "claude-sonnet-4-6")
    req = request("task", tools=[_client_tool(model="claude-opus-4-6", max_uses=40)])
    ctx = context()
    resp = await advisor_policy(executor, adv, max_uses=2).complete(req, ctx)
    assert resp.text() == "native answer" and adv.calls == []
    assert executor.calls[0].tools[0].raw == {"type": "advisor_20260301", "name": "advisor",
                                              "model": "claude-sonnet-4-6", "max_uses": 2}
    assert "natively" in ctx.trace.reason


async def test_client_advisor_tool_is_emulated_when_the_advisor_is_not_an_anthropic_model():
    executor = _anthropic(Scripted("claude-haiku", answer("", ASK), answer("done")), "claude-haiku-4-5")
    adv = Scripted("local-advisor", default="advice")
    req = request("task", tools=[_client_tool(model="claude-opus-4-6")])
    resp = await advisor_policy(executor, adv).complete(req, context())
    assert len(adv.calls) == 1 and resp.text().endswith("done")
    assert all(t.raw is None for t in executor.calls[0].tools)


def test_earlier_advisor_blocks_become_a_tool_call_and_result():
    history = [
        Message("user", [TextBlock("task")]),
        Message("assistant", [
            TextBlock("thinking about it"),
            ToolUseBlock("srvtoolu_1", "advisor", {}, server=True),
            OtherBlock({"type": "advisor_tool_result", "tool_use_id": "srvtoolu_1",
                        "content": {"type": "advisor_result", "text": "do X"}}),
            TextBlock("did X"),
        ]),
        Message("user", [TextBlock("thanks, now Y")]),
    ]
    out = lower_advisor_blocks(history, "advisor")
    assert [m.role for m in out] == ["user", "assistant", "user", "assistant", "user"]
    call = out[1].content[1]
    assert isinstance(call, ToolUseBlock) and not call.server and call.id == "srvtoolu_1"
    res = out[2].content[0]
    assert isinstance(res, ToolResultBlock) and res.tool_use_id == "srvtoolu_1" and res.content[0].text == "do X"
    assert out[3].text() == "did X"


async def test_stream_replays_the_whole_answer_with_advisor_blocks():
    executor = Scripted("local", answer("", ASK), answer("final"))
    it = await advisor_policy(executor, Scripted("frontier", "advice")).stream(request(stream=True), context())
    events = await collect(it)
    assert text_of(events) == "final"
    starts = [ev.block.type for ev in events if ev.kind == "block_start"]
    assert starts == ["tool_use", "other", "text"]


def test_response_events_round_trip_shape():
    resp = answer("hi", ("t", {"a": 1}))
    kinds = [ev.kind for ev in response_events(resp)]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("block_start") == 2 and kinds.count("block_stop") == 2
