"""Escalation routes through the real gateway over loopback HTTP, with protocol-faithful upstream
doubles: `local` is the OpenAI double, `frontier` the Anthropic double. Checks what each upstream
received and in what order, the response headers, the ledger rows and `tierwise trace`."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Reply, ToolCall
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config
from tierwise.commands.trace import command as trace_command

MSG = [{"role": "user", "content": "What is 6 * 7?"}]
# An answer must show its working: at least one equation, all of them right.
CHECKED = [{"type": "arithmetic", "min_equations": 1}]


def routes(**kw):
    base = {
        "main": {"policy": "cascade", "tiers": ["local", "frontier"], "verifiers": CHECKED,
                 "escalation_context": "with_draft"},
        "dv": {"policy": "draft_verify", "draft": "local", "verifier": "frontier", "on_reject": "main"},
        "adv": {"policy": "advisor", "executor": "local", "advisor": "frontier", "max_uses": 1},
        "spec": {"policy": "specialist", "default": "local", "specialists": [
            {"name": "vision", "target": "frontier", "images": True},
            {"name": "math", "target": "frontier", "detect": {"keywords": ["integral"]}, "context": "last_n",
             "last_n": 1}]},
    }
    base.update(kw)
    return base


@pytest.fixture
def gw(gateway, openai_up, anthropic_up, tmp_path):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes=routes())
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return gateway(cfg)


def row(g, rid):
    g.flush()
    rec = g.ledger.get(rid)
    assert rec is not None
    return rec


def test_cascade_escalates_when_verifier_fails(gw, openai_up, anthropic_up):
    openai_up.script(Reply(text="I am not sure.", usage=(20, 4)))
    anthropic_up.script(Reply(text="6 * 7 = 42", usage=(40, 6)))
    raw = oai(gw).chat.completions.with_raw_response.create(model="main", messages=MSG)
    assert raw.parse().choices[0].message.content == "6 * 7 = 42"
    assert raw.headers["x-tierwise-route"] == "main"
    assert raw.headers["x-tierwise-steps"] == (
        "call:local:ok,verdict:arithmetic:fail,decision:main:-,call:frontier:ok,decision:main:-")
    # the frontier saw the request, the failed draft and the reason
    sent = anthropic_up.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "I am not sure." in str(sent[1]["content"]) and "rejected" in str(sent[2]["content"])
    rec = row(gw, raw.headers["x-tierwise-request-id"])
    assert rec.decision == "frontier" and rec.locality == "remote"
    assert rec.input_tokens == 60 and rec.output_tokens == 10  # both calls were paid for
    assert rec.cost_usd == pytest.approx(40 * 3e-6 + 6 * 15e-6)  # only the frontier call costs
    assert [s["kind"] for s in rec.steps] == ["call", "verdict", "decision", "call", "decision"]
    assert "escalating to frontier" in rec.steps[2]["reason"]


def test_cascade_keeps_passing_local_answer(gw, openai_up, anthropic_up):
    openai_up.script(Reply(text="6 * 7 = 42", usage=(20, 1)))
    raw = ant(gw).messages.with_raw_response.create(model="main", max_tokens=50, messages=MSG)
    assert raw.parse().content[0].text == "6 * 7 = 42"
    assert anthropic_up.requests == []
    assert raw.headers["x-tierwise-steps"] == "call:local:ok,verdict:arithmetic:ok,decision:main:-"
    rec = row(gw, raw.headers["x-tierwise-request-id"])
    assert rec.decision == "local" and rec.cost_usd == 0 and "passed verification" in rec.reason


def test_verified_stream_arrives_after_verification(gw, openai_up, anthropic_up):
    openai_up.script(Reply(text="6 * 7 = 43"))
    anthropic_up.script(Reply(text="6 * 7 = 42", usage=(30, 3)))
    with ant(gw).messages.stream(model="main", max_tokens=50, messages=MSG) as s:
        text = "".join(s.text_stream)
        rid = s.response.headers["x-tierwise-request-id"]
    assert text == "6 * 7 = 42"
    # both upstreams were asked for whole answers: nothing unverified could leak into the stream
    assert not openai_up.requests[-1].body.get("stream") and not anthropic_up.requests[-1].body.get("stream")
    rec = row(gw, rid)
    assert rec.stream is True and rec.decision == "frontier"


def test_openai_stream_of_verified_route(gw, openai_up, anthropic_up):
    openai_up.script(Reply(text="forty-two"))
    anthropic_up.script(Reply(text="42"))
    chunks = oai(gw).chat.completions.create(model="main", messages=MSG, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "42"


def test_draft_verify_accepts_with_one_short_check(gw, openai_up, anthropic_up):
    openai_up.script(Reply(text="Paris", usage=(15, 1)))
    anthropic_up.script(Reply(text="YES", usage=(60, 1)))
    raw = oai(gw).chat.completions.with_raw_response.create(
        model="dv", messages=[{"role": "user", "content": "Capital of France?"}])
    assert raw.parse().choices[0].message.content == "Paris"
    check = anthropic_up.requests[-1].body
    assert check["max_tokens"] == 16 and "Paris" in str(check["messages"])
    assert len(openai_up.requests) == 1 and len(anthropic_up.requests) == 1
    assert raw.headers["x-tierwise-steps"] == "call:local:ok,call:frontier:ok,verdict:frontier:ok,decision:dv:-"
    rec = row(gw, raw.headers["x-tierwise-request-id"])
    assert [s.get("detail", {}).get("role") for s in rec.steps if s["kind"] == "call"] == [None, "verify"]
    assert rec.cost_usd == pytest.approx(60 * 3e-6 + 1 * 15e-6)


def test_draft_verify_ledger_names_the_drafting_model(gw, openai_up, anthropic_up):
    openai_up.script(Reply(text="Paris"))
    anthropic_up.script(Reply(text="YES"))
    raw = oai(gw).chat.completions.with_raw_response.create(model="dv", messages=MSG)
    assert row(gw, raw.headers["x-tierwise-request-id"]).decision == "local"


def test_draft_verify_rejection_runs_the_cascade(gw, openai_up, anthropic_up):
    openai_up.script(Reply(text="Lyon"), Reply(text="Lyon again"))
    anthropic_up.script(Reply(text="NO"), Reply(text="Paris 1 + 1 = 2"))
    raw = oai(gw).chat.completions.with_raw_response.create(model="dv", messages=MSG)
    assert raw.parse().choices[0].message.content == "Paris 1 + 1 = 2"
    assert raw.headers["x-tierwise-steps"].split(",") == [
        "call:local:ok", "call:frontier:ok", "verdict:frontier:fail", "decision:dv:-",
        "call:local:ok", "verdict:arithmetic:fail", "decision:main:-", "call:frontier:ok", "decision:main:-"]


def test_advisor_emulated_for_anthropic_client(gw, openai_up, anthropic_up):
    openai_up.script(Reply(tool_calls=[ToolCall("advisor", {"question": "plan?"})]), Reply(text="Done, per plan."))
    anthropic_up.script(Reply(text="Step 1, then step 2.", usage=(80, 8)))
    raw = ant(gw).messages.with_raw_response.create(
        model="adv", max_tokens=200, messages=[{"role": "user", "content": "Refactor this module"}],
        tools=[{"type": "advisor_20260301", "name": "advisor", "model": "frontier", "max_uses": 2}])
    body = raw.http_response.json()
    types = [b["type"] for b in body["content"]]
    assert types == ["server_tool_use", "advisor_tool_result", "text"]
    assert body["content"][1]["content"] == {"type": "advisor_result", "text": "Step 1, then step 2."}
    assert body["content"][1]["tool_use_id"] == body["content"][0]["id"]
    assert body["stop_reason"] == "end_turn"
    # the local executor got a function tool, then the advice as a tool result
    first, second = openai_up.requests[0].body, openai_up.requests[1].body
    assert [t["function"]["name"] for t in first["tools"]] == ["advisor"]
    assert second["messages"][-1]["role"] == "tool" and "Step 1" in second["messages"][-1]["content"]
    assert "Refactor this module" in str(anthropic_up.requests[0].body["messages"])
    rec = row(gw, raw.headers["x-tierwise-request-id"])
    assert rec.decision == "local"
    final = rec.steps[-1]["detail"]
    assert final["advisor_uses"] == 1 and final["advisor_input_tokens"] == 80
    assert final["advisor_cost"] == pytest.approx(80 * 3e-6 + 8 * 15e-6)


def test_specialist_hands_images_to_vision_model(gw, openai_up, anthropic_up):
    png = base64.b64encode(b"\x89PNG fake").decode()
    anthropic_up.script(Reply(text="a cat"))
    raw = ant(gw).messages.with_raw_response.create(model="spec", max_tokens=50, messages=[{
        "role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                   "data": png}},
                                    {"type": "text", "text": "what is this?"}]}])
    assert raw.parse().content[0].text == "a cat"
    assert openai_up.requests == []
    rec = row(gw, raw.headers["x-tierwise-request-id"])
    assert rec.decision == "frontier" and "vision" in rec.reason


def test_specialist_last_n_context(gw, openai_up, anthropic_up):
    anthropic_up.script(Reply(text="x^2/2"))
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "integral of x?"}]
    oai(gw).chat.completions.create(model="spec", messages=msgs)
    assert anthropic_up.requests[-1].body["messages"] == [{"role": "user", "content": "integral of x?"}] or \
        len(anthropic_up.requests[-1].body["messages"]) == 1


def test_trace_command_shows_the_steps(gw, openai_up, anthropic_up, tmp_path: Path):
    openai_up.script(Reply(text="unsure"))
    anthropic_up.script(Reply(text="42"))
    raw = oai(gw).chat.completions.with_raw_response.create(model="main", messages=MSG)
    rid = raw.headers["x-tierwise-request-id"]
    gw.flush()
    out = CliRunner().invoke(trace_command, ["--config", str(tmp_path / "tierwise.yaml"), rid, "--json"])
    assert out.exit_code == 0, out.output
    assert '"verdict"' in out.output and "escalating to frontier" in out.output
    out = CliRunner(env={"COLUMNS": "250"}).invoke(trace_command, ["--config", str(tmp_path / "tierwise.yaml"), rid])
    assert out.exit_code == 0 and "arithmetic" in out.output and "frontier" in out.output
