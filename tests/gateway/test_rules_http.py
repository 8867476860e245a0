"""Rule routing through the real server, the way Claude Code's traffic arrives: requested
model names the config does not know go to the default route, where rules split them."""

from __future__ import annotations

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config

ROUTES = {
    "claude-code": {
        "policy": "rules",
        "rules": [
            {"name": "background", "match": {"model": "*haiku*"}, "target": "local"},
            {"name": "subagents", "match": {"subagent": True}, "target": "local"},
            {"name": "titles", "match": {"feature": "title"}, "target": "local"},
            {"name": "pictures", "match": {"images": True}, "target": "frontier"},
            {"name": "long", "match": {"min_input_tokens": 2000}, "target": "frontier"},
        ],
        "default": "frontier",
    },
}


def setup(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes=ROUTES)
    cfg["server"] = {"default_route": "claude-code"}
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    return gateway(cfg)


def ask(g, model, **kw):
    raw = ant(g).messages.with_raw_response.create(
        model=model, max_tokens=50, messages=[{"role": "user", "content": kw.pop("text", "hello")}], **kw)
    return raw.parse().content[0].text, raw.headers


def test_claude_code_traffic_split(gateway, openai_up, anthropic_up):
    g = setup(gateway, openai_up, anthropic_up)
    assert ask(g, "claude-haiku-4-5")[0] == "local answer"
    assert ask(g, "claude-sonnet-4-5", extra_headers={"X-Claude-Code-Agent-Id": "agent-7"})[0] == "local answer"
    assert ask(g, "claude-sonnet-4-5", extra_headers={"X-Tierwise-Feature": "title"})[0] == "local answer"
    text, headers = ask(g, "claude-sonnet-4-5")
    assert text == "frontier answer" and headers["x-tierwise-route"] == "claude-code"
    assert ask(g, "claude-haiku-4-5", text="word " * 3000)[0] == "local answer"  # first match wins
    g.flush()
    rows = g.ledger.query(route="claude-code")
    assert [r.decision for r in rows] == ["local", "local", "local", "frontier", "local"]
    reasons = [r.reason for r in rows]
    assert "background" in reasons[0] and "claude-haiku-4-5" in reasons[0]
    assert "subagents" in reasons[1] and "titles" in reasons[2] and "default" in reasons[3]
    assert rows[2].feature == "title"
    # the upstream saw the local model's own id, not the name Claude Code asked for
    assert all(r.body["model"] == "qwen-local" for r in openai_up.requests)


def test_long_context_and_images_over_openai_client(gateway, openai_up, anthropic_up):
    g = setup(gateway, openai_up, anthropic_up)
    c = oai(g)
    long = c.chat.completions.create(model="whatever", messages=[{"role": "user", "content": "word " * 3000}])
    assert long.choices[0].message.content == "frontier answer"
    img = c.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
    assert img.choices[0].message.content == "local answer"  # the haiku rule comes first
    g.flush()
    assert "long" in g.ledger.query(route="claude-code")[0].reason
