"""Claude Code's traffic classes, recognised from captured requests of the real CLI.

The transcripts under tests/clients/transcripts/ were recorded by tests/clients/claude_code_session.py
from real Claude Code sessions against a scripted upstream; the script labelled each answer from its
own markers (never from Claude Code's prompts), so the label is an independent record of what each
request was for. The classifier must agree with it on every request.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tierwise.clients import claude_code
from tierwise.wire import anthropic_messages

TRANSCRIPTS = sorted((Path(__file__).parent / "transcripts").glob("claude_code_*/session_*.json"))
# the script's label -> the class the classifier must find
EXPECTED = {"main:WebFetch": "main", "main:Agent": "main", "main:Task": "main", "main:Bash": "main",
            "main:final": "main", "subagent": "subagent", "compact": "compact", "structured": "title",
            "side": "web_fetch"}


def captured(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    return [r for r in data["requests"] if r["path"] == "/v1/messages" and r["method"] == "POST"]


def test_transcripts_exist_and_cover_every_class() -> None:
    assert TRANSCRIPTS, "record them with: python -m tests.clients.claude_code_session"
    labels = {r["answered"] for p in TRANSCRIPTS for r in captured(p)}
    assert {EXPECTED[x] for x in labels} == {"main", "subagent", "compact", "title", "web_fetch"}


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_every_captured_request_is_classified_as_the_script_saw_it(path: Path) -> None:
    for r in captured(path):
        req = anthropic_messages.decode_request(r["body"], r["headers"])
        found = claude_code.classify(req)
        assert found is not None, r["answered"]
        assert found[0] == EXPECTED[r["answered"]], (r["answered"], found)


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_classes_do_not_depend_on_headers_a_proxy_might_strip(path: Path) -> None:
    """Without its headers Claude Code is still recognised by the billing line in its system prompt;
    subagents then by `cc_is_subagent=true` in that line."""
    for r in captured(path):
        req = anthropic_messages.decode_request(r["body"], {})
        found = claude_code.classify(req)
        assert found is not None and found[0] == EXPECTED[r["answered"]], (r["answered"], found)


def test_the_model_name_does_not_tell_the_classes_apart() -> None:
    """The evidence behind the matcher: without ANTHROPIC_DEFAULT_HAIKU_MODEL, and with a key not shaped like
    Anthropic's (the transcripts' test key), every class is sent with the main model id, so a `*haiku*` model rule
    never fires (with an `sk-ant-api03-` key the page summary asks for haiku: test_claude_code_routes.py)."""
    [path] = [p for p in TRANSCRIPTS if p.stem == "session_nonessential"]
    models = {r["body"]["model"] for r in captured(path)}
    assert len(models) == 1 and "haiku" not in next(iter(models))


def test_sdk_requests_are_not_claude_code() -> None:
    body = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "Web page content: hi"}]}
    req = anthropic_messages.decode_request(body, {"user-agent": "Anthropic/Python 0.70.0"})
    assert claude_code.classify(req) is None


def test_a_rule_with_an_unknown_class_is_a_config_error(tmp_path: Path) -> None:
    from tests.harness import make_config

    cfg = {"providers": {"p": {"kind": "anthropic", "base_url": "http://127.0.0.1:1"}},
           "models": {"m": {"provider": "p", "model": "x"}},
           "routes": {"r": {"policy": "rules", "default": "m",
                            "rules": [{"match": {"claude_code": "titles"}, "target": "m"}]}}}
    with pytest.raises(Exception) as e:
        make_config(cfg, tmp_path)
    assert "titles" in str(e.value) and "web_fetch" in str(e.value)
