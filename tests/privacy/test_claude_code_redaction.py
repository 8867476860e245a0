"""Claude Code's own requests through a `pii: redact` route (the privacy docs' set-up, with Claude Code
as the client).

A main-agent request of Claude Code 2.1.197 (captured: tests/clients/transcripts/) carries 24 tools whose
names and descriptions use words the name detectors read as people (`Edit`, `Workflow`, `Takes`, `Run`,
`line`). Each such word was redacted in the text where it was found and left where it was not (another
description, a tool's name, a schema's `required` list), and the leak check, which looks for every
detected value anywhere in the outgoing body, then refused every main-agent request: under `pii:
redact` Claude Code could not reach the frontier model at all. Real HTTP, the official SDK, an
Anthropic double upstream."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import ant
from tests.harness import unavailable
from tests.privacy.support import privacy_config

CAPTURE = Path(__file__).resolve().parents[1] / "clients" / "transcripts" / "claude_code_2.1.197"
EMAIL = "jane.doe@example.com"
PHONE = "+46 70 123 45 67"
FORWARDED = ("anthropic-beta", "anthropic-version", "user-agent", "x-app", "x-claude-code-session-id")


def main_requests(name: str) -> list[dict[str, Any]]:
    """The captured main-agent requests (tools offered) of one session, as sent."""
    session = json.loads((CAPTURE / name).read_text())
    return [r for r in session["requests"] if r["path"] == "/v1/messages" and r["body"].get("tools")]


def with_user_secret(body: dict[str, Any]) -> dict[str, Any]:
    """The request with the user's e-mail address and phone number in its last user turn."""
    body = json.loads(json.dumps(body))
    body["messages"].append({"role": "assistant", "content": "Which address should I use?"})
    body["messages"].append({"role": "user", "content": f"Mail {EMAIL} or call {PHONE}."})
    return body


@pytest.fixture
def g(gateway, openai_up, anthropic_up):
    # The name heuristics run with NER, which a user with the `privacy-ner` extra gets (`enabled: auto`).
    if importlib.util.find_spec("spacy") is None:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")
    cfg = privacy_config(openai_up.url, anthropic_up.url,
                         {"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}},
                         ner={"enabled": True})
    cfg["models"]["frontier"]["context_window"] = 200000
    return gateway(cfg)


@pytest.mark.parametrize("session", ["session_nonessential.json", "session_interactive.json"])
def test_claude_code_main_requests_reach_the_frontier_redacted(g, anthropic_up, session):
    captured = main_requests(session)
    assert captured
    client = ant(g)
    for r in captured:
        body = with_user_secret(r["body"])
        fields = {k: body.pop(k) for k in ("model", "messages", "max_tokens", "system", "tools")}
        body.pop("stream", None)
        headers = {k: v for k, v in r["headers"].items() if k in FORWARDED}
        with client.messages.stream(**fields, extra_body=body, extra_headers=headers) as stream:
            assert stream.get_final_message().content  # streamed, as Claude Code asks
    sent = [json.loads(rec.raw) for rec in anthropic_up.requests]
    assert len(sent) == len(captured)
    for out in sent:
        raw = json.dumps(out)
        assert EMAIL not in raw and PHONE not in raw
        # the tools keep their names: Claude Code's tool calls must still name them
        assert "Edit" in [t["name"] for t in out["tools"]]
