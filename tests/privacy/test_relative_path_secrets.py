"""Relative paths are not secrets, but a secret shaped like one still is (session 35, review35e).

newuser35 let relative paths whose parts are words with at most a leading capital, or all-capital names, pass the
entropy rule (Codex lists its skills as `r0/skill-creator/SKILL.md` in every prompt). That also passed, to a remote
model under `secrets: redact`, every lower-case key after a capitalised URL segment (`.../v1/Keys/a1b2...`: the token
is `com/v1/Keys/a1b2...`), a key under a prefix (`vault/Prod/q8zk...`), and a `.env` value under a secret name written
with slashes (`SESSION_COOKIE_SALT=Tr0ub4dor/Horse/Staple`). A relative path now passes only when no part holds a
random run (12+ letters and digits switching between them 3 times or more), and never as a secret-named value.
"""

from __future__ import annotations

import pytest

from tests.gateway.conftest import oai
from tests.privacy.support import echo_placeholders, found, privacy_config, sent_texts
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig

SECRETS = [  # (text, the secret in it)
    ("curl https://api.example.com/v1/Keys/k7q2m9x4c8v1b6n3z5w0p2r8", "k7q2m9x4c8v1b6n3z5w0p2r8"),
    ("GET https://hooks.example.net/Tokens/3f9a1c0e7b2d4a6f8e1c3b5d7a9f0e2c", "3f9a1c0e7b2d4a6f8e1c3b5d7a9f0e2c"),
    ("the key is vault/Prod/q8zk2vn7xlp4tmw9sybhcj3n", "q8zk2vn7xlp4tmw9sybhcj3n"),
    ("SESSION_COOKIE_SALT=Tr0ub4dor/Horse/Staple", "Tr0ub4dor/Horse/Staple"),
    ("export HMAC_SALT=k3y/vault/Prod2024/xyz", "k3y/vault/Prod2024/xyz"),
]
PATHS = [  # relative (and absolute) paths a coding agent's prompt holds: none is a secret
    "(file: r0/skill-creator/SKILL.md)",
    "(file: r1/openai-docs/SKILL.md)",
    "(file: r3/plugin-creator/SKILL.md)",
    "see tests/fixtures/Sample2024/README.md",
    "built build/x86_64-linux/Release/app2",
    "notes in releases/2026-12-07/CHANGELOG.md",
    "dump at data/raw/20261207143055/Export.csv",
    "weights in models/Qwen2/qwen2-7b-instruct-q4km/README.md",
    "UPLOAD_DIRECTORY=/var/lib/app/Uploads2",
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectionConfig(classes={"secrets": {}}))


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_a_secret_shaped_like_a_relative_path_is_found(detector: Detector, text: str, secret: str) -> None:
    assert any(e == "SECRET" and secret in v for e, v in found(detector, text)), found(detector, text)


@pytest.mark.parametrize("text", PATHS)
def test_a_path_in_a_coding_prompt_is_not_a_secret(detector: Detector, text: str) -> None:
    assert [v for e, v in found(detector, text) if e == "SECRET"] == []


def test_over_http_the_keys_leave_as_placeholders_and_the_paths_readable(gateway, openai_up, anthropic_up):
    anthropic_up.default = echo_placeholders
    route = {"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}}
    g = gateway(privacy_config(openai_up.url, anthropic_up.url, route, policy={"secrets": "redact"},
                               classes={"secrets": {}}))
    text = "\n".join([t for t, _ in SECRETS] + PATHS)
    assert oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": text}]).choices
    (sent,) = sent_texts(anthropic_up)
    assert [s for _, s in SECRETS if s in sent] == []
    assert "<SECRET_" in sent
    for p in PATHS:
        assert p in sent, (p, sent)
