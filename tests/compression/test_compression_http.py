"""Context compression through real HTTP: what reaches the upstream, what is never touched, the trace."""

from __future__ import annotations

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.harness import make_config, two_tier_config

FILLER = [f"Paragraph {i} talks about the weather in town number {i}, rain and sun and wind, nothing else. " * 3
          for i in range(60)]
NEEDLE = "The launch code for project Bluebird is 4471-ZEBRA."
DOC = "\n\n".join(FILLER[:30] + [NEEDLE] + FILLER[30:])
SYSTEM = "You are terse. " * 40
QUESTION = "What is the launch code for project Bluebird?"


def config(openai_url: str, anthropic_url: str, **rc) -> dict:
    rc.setdefault("min_tokens", 100)
    return two_tier_config(openai_url, anthropic_url, routes={"main": ["frontier"], "loc": ["local"]},
                           compression={"routes": {"main": rc}})


def sent_text(body: dict) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"]) + str(body.get("system", ""))


def test_long_context_is_cut_and_the_answer_kept(gateway, openai_up, anthropic_up):
    g = gateway(config(openai_up.url, anthropic_up.url, ratio=4))
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Read this:\n\n" + DOC},
            {"role": "assistant", "content": "Done."}, {"role": "user", "content": QUESTION}]
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=msgs)
    body = anthropic_up.last.body
    first = body["messages"][0]["content"]
    first = first if isinstance(first, str) else "".join(b["text"] for b in first)
    assert NEEDLE in first
    assert len(first) < len(DOC) / 3  # about a quarter of the tokens remain
    system = body["system"] if isinstance(body["system"], str) else "".join(b["text"] for b in body["system"])
    assert system == SYSTEM  # never the system prompt
    last = body["messages"][-1]["content"]
    assert (last if isinstance(last, str) else last[0]["text"]) == QUESTION  # never the last user turn
    g.flush()
    rec = g.ledger.get(raw.headers["x-tierwise-request-id"])
    step = next(s for s in rec.steps if s["name"] == "compression")
    assert step["detail"]["tokens_before"] > 3.5 * step["detail"]["tokens_after"]
    assert rec.decision == "frontier"


def test_routes_without_compression_and_short_requests_pass_whole(gateway, openai_up, anthropic_up):
    g = gateway(config(openai_up.url, anthropic_up.url, min_tokens=100_000))
    msgs = [{"role": "user", "content": DOC}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": QUESTION}]
    oai(g).chat.completions.create(model="main", messages=msgs)
    assert DOC in sent_text(anthropic_up.last.body)
    oai(g).chat.completions.create(model="loc", messages=msgs)
    assert openai_up.last.body["messages"][0]["content"] == DOC


def test_tool_results_compressed_and_calls_still_paired(gateway, openai_up, anthropic_up):
    g = gateway(config(openai_up.url, anthropic_up.url, ratio=4, keep_last_turns=0))
    msgs = [{"role": "user", "content": "Find the launch code."},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": '{"p": "x"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": DOC},
            {"role": "user", "content": QUESTION}]
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
    oai(g).chat.completions.create(model="main", messages=msgs, tools=tools)
    body = anthropic_up.last.body
    use = [b for m in body["messages"] for b in (m["content"] if isinstance(m["content"], list) else [])
           if b.get("type") == "tool_use"]
    res = [b for m in body["messages"] for b in (m["content"] if isinstance(m["content"], list) else [])
           if b.get("type") == "tool_result"]
    assert use[0]["id"] == res[0]["tool_use_id"] == "call_1"
    text = res[0]["content"] if isinstance(res[0]["content"], str) else "".join(c["text"] for c in res[0]["content"])
    assert NEEDLE in text and len(text) < len(DOC) / 3


def test_summary_by_the_local_model(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]},
                          compression={"routes": {"main": {"method": "summary", "summary_model": "local",
                                                           "min_tokens": 100}}})
    g = gateway(cfg)
    openai_up.script(Reply(text="Bluebird launch code: 4471-ZEBRA."))
    msgs = [{"role": "user", "content": DOC}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": QUESTION}]
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=msgs)
    assert QUESTION in openai_up.last.body["messages"][0]["content"]  # the summary knows the question
    sent = sent_text(anthropic_up.last.body)
    assert "4471-ZEBRA" in sent and DOC not in sent
    g.flush()
    rec = g.ledger.get(raw.headers["x-tierwise-request-id"])
    assert rec.decision == "frontier"  # the summary call is a helper, not the answer
    assert any(s["name"] == "compression" and s["detail"]["method"] == "summary" for s in rec.steps)


def test_config_errors_name_the_field(tmp_path):
    from tierwise.errors import ConfigError

    cfg = two_tier_config("http://127.0.0.1:1", "http://127.0.0.1:2", routes={"main": ["frontier"]},
                          compression={"routes": {"main": {"method": "summary"}}})
    with pytest.raises(ConfigError, match="compression.routes.main.summary_model"):
        make_config(cfg, tmp_path)
    cfg["compression"] = {"routes": {"main": {"ratio": 0.5}}}
    with pytest.raises(ConfigError, match="compression.routes.main.ratio"):
        make_config(cfg, tmp_path)
    cfg["compression"] = {"routes": {"nope": {}}}
    with pytest.raises(ConfigError, match="compression.routes.nope"):
        make_config(cfg, tmp_path)
