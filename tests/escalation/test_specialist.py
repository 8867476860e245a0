"""Specialist hand-off: capability triggers and context passing."""

from tests.escalation.scripted import Scripted, with_cfg
from tests.fakes import context, request
from tierwise.canonical import ImageBlock, Message, TextBlock, ToolResultBlock, ToolUseBlock
from tierwise.policies.specialist import DetectorConfig, Handoff, Specialist, detector


def handoff(default, *specs, **kw):
    return Handoff("spec", default, list(specs), **kw)


def convo(n_turns: int) -> list[Message]:
    msgs = []
    for i in range(n_turns):
        msgs.append(Message("user", [TextBlock(f"question {i}")]))
        msgs.append(Message("assistant", [TextBlock(f"answer {i}")]))
    msgs.append(Message("user", [TextBlock("final question")]))
    return msgs


async def test_images_go_to_vision_model_only_when_local_lacks_vision():
    local, vision = with_cfg(Scripted("local", "text"), vision=False), Scripted("vision", "a cat")
    h = handoff(local, Specialist("vision", vision, images=True))
    req = request("what is this?")
    req.messages[0].content.append(ImageBlock(media_type="image/png", data="AAAA"))
    ctx = context()
    assert (await h.complete(req, ctx)).text() == "a cat"
    assert "images" in ctx.trace.reason and ctx.trace.decision == "vision"
    assert (await h.complete(request("no picture"), context())).text() == "text"
    seeing = with_cfg(Scripted("local", "I see a cat"), vision=True)
    assert (await handoff(seeing, Specialist("vision", vision, images=True)).complete(req, context())).text() \
        == "I see a cat"


async def test_input_beyond_context_window_goes_to_long_context_model():
    local, long = with_cfg(Scripted("local", default="short"), context_window=1000), Scripted("long", default="long")
    h = handoff(local, Specialist("long", long, long_context=True))
    assert (await h.complete(request("x" * 100), context())).text() == "short"
    ctx = context()
    assert (await h.complete(request("x" * 8000), ctx)).text() == "long"
    assert "exceed local's window of 1000" in ctx.trace.reason
    # the requested output counts too
    assert (await h.complete(request("x" * 100, max_tokens=2000), context())).text() == "long"


async def test_detectors_regex_keywords_callable():
    local, math = Scripted("local", default="l"), Scripted("math", default="m")
    code, proof = Scripted("code", default="c"), Scripted("p", default="p")
    h = handoff(
        local,
        Specialist("math", math, detect=detector(DetectorConfig(regex=r"\d+\s*[-+*/^]\s*\d+|integral"))),
        Specialist("code", code, detect=detector(DetectorConfig(keywords=["python", "stack trace"]))),
        Specialist("proof", proof, detect=detector(DetectorConfig(callable="tests.escalation.detectors:asks_for_proof"))),
    )
    assert (await h.complete(request("what is 17 * 23?"), context())).text() == "m"
    assert (await h.complete(request("fix my Python script"), context())).text() == "c"
    assert (await h.complete(request("pythonic?"), context())).text() == "l"  # whole words only
    assert (await h.complete(request("Prove it"), context())).text() == "p"
    ctx = context()
    assert (await h.complete(request("hello"), ctx)).text() == "l"
    assert "no specialist needed" in ctx.trace.reason


async def test_last_n_turns():
    local, math = Scripted("local"), Scripted("math", "m")
    h = handoff(local, Specialist("math", math, detect=detector(DetectorConfig(keywords=["final"])),
                                  context="last_n", last_n=2))
    req = request()
    req.messages = convo(4)
    await h.complete(req, context())
    sent = math.calls[0].messages
    assert [m.text() for m in sent] == ["question 3", "answer 3", "final question"]


def test_last_n_never_splits_a_tool_call_from_its_result():
    from tierwise.policies.escalation import last_turns

    msgs = [
        Message("user", [TextBlock("first")]),
        Message("assistant", [TextBlock("a")]),
        Message("user", [TextBlock("second")]),
        Message("assistant", [ToolUseBlock("t1", "read", {})]),
        Message("user", [ToolResultBlock("t1", [TextBlock("contents")])]),
        Message("assistant", [TextBlock("b")]),
    ]
    earlier, kept = last_turns(msgs, 1)
    assert kept[0].text() == "second" and len(kept) == 4 and len(earlier) == 2


async def test_summary_context_summarises_earlier_turns_locally():
    local, math = Scripted("local", "SUMMARY: user asked 3 things"), Scripted("math", "m")
    h = handoff(local, Specialist("math", math, detect=detector(DetectorConfig(keywords=["final"])), context="summary"))
    req = request()
    req.messages = convo(3)
    ctx = context()
    await h.complete(req, ctx)
    assert "question 0" in local.calls[0].messages[0].text()  # the local model read the earlier turns
    sent = math.calls[0]
    assert [m.text() for m in sent.messages] == ["final question"]
    assert "SUMMARY: user asked 3 things" in sent.system[-1].text
    assert [s.detail.get("role") for s in ctx.trace.calls()] == ["summary", None]
    assert "context: summary" in ctx.trace.reason


async def test_full_context_is_untouched_and_streams_pass_through():
    local, math = Scripted("local"), Scripted("math", "m")
    h = handoff(local, Specialist("math", math, detect=detector(DetectorConfig(keywords=["final"]))))
    req = request(stream=True)
    req.messages = convo(2)
    it = await h.stream(req, context())
    _ = [c async for c in it]
    assert math.streams == 1 and math.calls[0] is req
