"""`tierwise claude` leaves out a variable that holds a gateway secret in any form it is commonly written in (review38c):
the check was a plain substring test, so the Redis URL a config reads from `${REDIS_URL}` reached Claude Code whenever
its password needed percent-encoding (the gateway holds the decoded password), and so did a key in base64 (a Basic
credential, a Docker auth) or hex, or a key cut in two variables."""

from __future__ import annotations

import base64

from tierwise.commands.claude import claude_env

PASSWORD = "Tw38/Redis@Pass+42"
KEY = "sk-proj-Tw38ProviderKey0123456789abcd"


def test_a_secret_written_encoded_is_withheld_too(monkeypatch) -> None:
    variables = {
        "TW38_REDIS_URL": "redis://:Tw38%2FRedis%40Pass%2B42@127.0.0.1:6379/9",  # as a URL must write it
        "TW38_BASIC": "Basic " + base64.b64encode(f"me:{KEY}".encode()).decode(),
        "TW38_HEX": KEY.encode().hex(),
        "TW38_FIRST_HALF": KEY[:18],
        "TW38_PLAIN": "nothing-secret-here",
    }
    for k, v in variables.items():
        monkeypatch.setenv(k, v)
    env = claude_env("http://127.0.0.1:9", haiku_model=None, subagent_model=None, key="tw-client-key-0123",
                     withheld={PASSWORD, KEY})
    assert env["TW38_PLAIN"] == "nothing-secret-here"
    leaked = sorted(k for k in variables if k != "TW38_PLAIN" and k in env)
    assert not leaked
