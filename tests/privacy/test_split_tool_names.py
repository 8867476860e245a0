"""A tool call's name is structure, not prose: it is not joined to its neighbours when values split across texts
are looked for (session 34, newuser34b).

In a real Claude Code session under `secrets: redact`, the user's `show me .env`, the Read call's name and its path
`/tmp/nu34b/proj/.env` read together as `envRead/tmp/nu34b/proj/`: mixed case, digits, a "high-entropy token". The
remote model got `show me .<SECRET_1>` and its own earlier call as `<SECRET_2>.env`. Any path with a digit after a
capitalised tool name did the same. The name itself is still scanned on its own (request_scan), and a value cut
between the text before the call and the call's arguments is still found.
"""

from __future__ import annotations

import pytest

from tierwise.privacy.boundary import conversation_texts
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig
from tierwise.privacy.split_values import split_findings
from tierwise.wire.anthropic_messages.request_decode import decode_request


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectionConfig(classes={"secrets": {}}))


def turn(user_text: str, tool: str, args: dict[str, str]) -> dict:
    return {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": [{"type": "text", "text": user_text}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": tool, "input": args}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]},
    ]}


def pieces(detector: Detector, body: dict) -> list[str]:
    texts, _ = conversation_texts(decode_request(body, {}))
    found = split_findings(texts, detector.scan, detector.scan)
    return [texts[i][f.start:f.end] for i, fs in found.items() for f in fs]


@pytest.mark.parametrize(("text", "tool", "path"), [
    ("show me .env", "Read", "/tmp/nu34b/proj/.env"),
    ("fix the bug", "Edit", "/home/ana/proj2/src/v1/app.py"),
    ("look at the logs", "Grep", "/var/log/app2024/"),
])
def test_a_tool_name_between_a_text_and_a_path_makes_no_secret(detector: Detector, text: str, tool: str,
                                                               path: str) -> None:
    assert pieces(detector, turn(text, tool, {"file_path": path})) == []


def test_a_key_cut_between_the_text_and_the_calls_arguments_is_still_found(detector: Detector) -> None:
    key = "ghp_" + "a1" * 18  # (low entropy: neither half is a secret by itself)
    got = pieces(detector, turn(f"use the token {key[:17]}", "Bash", {"command": f"{key[17:]} gh auth login"}))
    assert "".join(got).startswith(key[:17]) and key[17:] in "".join(got), got
