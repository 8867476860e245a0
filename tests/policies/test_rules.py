from tests.fakes import FakeTarget, context, request
from tierwise.canonical import ImageBlock, Message, TextBlock, Tool
from tierwise.policies.rules import Match, Rule, Rules


def make_rules() -> tuple[Rules, dict[str, FakeTarget]]:
    t = {n: FakeTarget(n) for n in ("local", "vision", "long", "frontier", "agent", "tagged", "thinker", "toolsy")}
    rules = [
        (Rule(name="haiku", match=Match(model="*haiku*"), target="local"), t["local"]),
        (Rule(name="subagent", match=Match(subagent=True), target="agent"), t["agent"]),
        (Rule(name="feature", match=Match(feature=["summarise", "title"]), target="tagged"), t["tagged"]),
        (Rule(name="images", match=Match(images=True), target="vision"), t["vision"]),
        (Rule(name="long", match=Match(min_input_tokens=1000), target="long"), t["long"]),
        (Rule(name="thinking", match=Match(thinking=True), target="thinker"), t["thinker"]),
        (Rule(name="tools", match=Match(tools=True), target="toolsy"), t["toolsy"]),
    ]
    return Rules("main", rules, t["frontier"]), t


async def route(req, requested=None):
    r, t = make_rules()
    ctx = context()
    ctx.notes["requested_model"] = requested or req.model
    resp = await r.complete(req, ctx)
    return resp.model, ctx.trace


async def test_model_pattern():
    name, trace = await route(request(model="claude-haiku-4-5"))
    assert name == "local"
    assert "haiku" in trace.reason and "claude-haiku-4-5" in trace.reason


async def test_subagent_header():
    req = request(model="claude-sonnet-4-5", headers={"x-claude-code-agent-id": "abc"})
    assert (await route(req))[0] == "agent"


async def test_codex_subagent_header_but_not_its_compaction():
    """Codex marks a spawned thread's and a memory pass's turns with x-openai-subagent; a compaction run as a
    subagent (`compact`) summarises the main conversation, `codex review` (`review`) is the user's own task, and
    its approval reviewer (`guardian`) decides for the user:
    both stay with the main agent's target."""
    for kind in ("collab_spawn", "memory_consolidation"):
        name, trace = await route(request(headers={"x-openai-subagent": kind}))
        assert name == "agent" and "Codex subagent" in trace.reason and kind not in trace.reason
    for kind in ("compact", "review", "guardian"):
        assert (await route(request(headers={"x-openai-subagent": kind})))[0] == "frontier"


async def test_feature_header_and_metadata():
    assert (await route(request(headers={"x-tierwise-feature": "title"})))[0] == "tagged"
    assert (await route(request(metadata={"tierwise_feature": "summarise"})))[0] == "tagged"
    assert (await route(request(headers={"x-tierwise-feature": "other"})))[0] == "frontier"


async def test_images():
    req = request()
    req.messages.append(Message("user", [ImageBlock(media_type="image/png", data="AAAA")]))
    assert (await route(req))[0] == "vision"


async def test_long_context_estimate():
    assert (await route(request("word " * 2000)))[0] == "long"
    assert (await route(request("short")))[0] == "frontier"


async def test_thinking_and_tools():
    assert (await route(request(thinking={"type": "enabled", "budget_tokens": 1024})))[0] == "thinker"
    assert (await route(request(thinking={"type": "disabled"})))[0] == "frontier"
    assert (await route(request(tools=[Tool("get_weather")])))[0] == "toolsy"


async def test_first_match_wins_and_default_reason():
    req = request(model="claude-haiku-4-5", tools=[Tool("x")])
    name, trace = await route(req)
    assert name == "local"
    name, trace = await route(request("plain"))
    assert name == "frontier" and "default" in trace.reason
    assert trace.steps[0].kind == "decision"


def test_match_rejects_unknown_keys():
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError):
        Match.model_validate({"modle": "x"})
    assert TextBlock("a").text == "a"
