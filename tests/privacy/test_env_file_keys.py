"""Keys written the way a `.env` file holds them: `NAME=value`, no space, no quotes.

Found in session 34 (newuser34b): Claude Code read a project's `.env` and the next main-agent turn
carried `AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE` to the frontier model under `secrets: redact`. The
prefix rules ran only at the start of a run of token characters, and `=` is one of those characters,
so `NAME=AKIA...` was one run starting with the variable's name; an AWS key id (no lower case) is
no entropy find either. Each value below is found by its issuer's prefix alone (low entropy on purpose).
"""

from __future__ import annotations

import pytest

from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig

KEYS = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SESSION_KEY": "ASIAQWERTYUIOPASDFGH",
    "DIGITALOCEAN": "dop_v1_" + "a1" * 32,
    "SHOPIFY": "shpat_" + "ab12" * 8,
    "GOOGLE": "AIza" + "A1" * 17 + "B",
    "NPM": "npm_" + "a" * 36,
    "STRIPE": "sk_live_" + "a" * 24,
    "OPENAI": "sk-" + "a" * 40,
    "HF": "hf_" + "a" * 34,
    "GROQ": "gsk_" + "a" * 44,
    "SESSION": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop",
}


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectionConfig(classes={"secrets": {}}))


@pytest.mark.parametrize("name", sorted(KEYS))
def test_a_prefixed_key_after_its_name_and_an_equals_sign_is_found_whole(detector: Detector, name: str) -> None:
    value = KEYS[name]
    for line in (f"{name}={value}", f"export {name}={value}", f"1\t{name}={value}\n"):
        at = line.index(value)
        spans = [(f.start, f.end) for f in detector.scan(line) if f.entity == "SECRET"]
        assert any(s <= at and at + len(value) <= e for s, e in spans), (line, spans)


def test_a_whole_env_file_as_claude_codes_read_tool_returns_it(detector: Detector) -> None:
    text = "".join(f"{i}\t{k}={v}\n" for i, (k, v) in enumerate(KEYS.items(), 1)) + "DEBUG=true\nPORT=8080\n"
    found = [text[f.start:f.end] for f in detector.scan(text) if f.entity == "SECRET"]
    for value in KEYS.values():
        assert any(value in f for f in found), (value, found)
    assert not any("DEBUG" in f or "8080" in f for f in found), found


@pytest.mark.parametrize("text", [
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "see docs/AKIA_NOTES.md and src/app/settings.py",
    "LOG_LEVEL=debug_verbose_everything_on",
    "the commit=0123456789abcdef0123456789abcdef01234567",
])
def test_ordinary_assignments_and_paths_stay_unflagged(detector: Detector, text: str) -> None:
    assert [text[f.start:f.end] for f in detector.scan(text) if f.entity == "SECRET"] == []
