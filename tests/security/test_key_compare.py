"""Key comparison tells nothing by its timing: `hmac.compare_digest` is constant-time only between values of
one length, and returns at once for values of different lengths. The gateway compared a presented key with
each configured key (client, admin, viewer) and the MCP server its token as raw values, so how long a refusal
took told the length of each configured key. Every comparison is now of two digests of one length. (No timing
threshold here: the test records the values each comparison was given, over real HTTP with real keys.)"""

from __future__ import annotations

import hmac
from typing import Any

import httpx2 as httpx

from tests.doubles import Reply
from tests.gateway.conftest import oai

KEYS = {"TW_CMP_CLIENT": "client-key-" + "c" * 30, "TW_CMP_ADMIN": "admin-" + "a" * 50, "TW_CMP_VIEW": "v" * 12}
GUESSES = ["x", "guess-of-another-length", "z" * 200]


def _recording(monkeypatch: Any) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def compare(a: Any, b: Any) -> bool:
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare)
    return seen


def test_every_key_comparison_is_between_values_of_one_length(two_tier, monkeypatch, anthropic_up):
    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    anthropic_up.default = Reply(text="ok")
    g = two_tier(server={"api_keys_env": ["TW_CMP_CLIENT"], "admin_keys_env": ["TW_CMP_ADMIN"], "default_route": "main"},
                 observability={"metrics": {"enabled": True},
                                "dashboard": {"enabled": True, "viewer_keys_env": ["TW_CMP_VIEW"]}})
    seen = _recording(monkeypatch)
    for guess in GUESSES:
        h = {"authorization": f"Bearer {guess}"}
        assert httpx.post(g.url + "/v1/chat/completions", headers=h, json={
            "model": "main", "messages": [{"role": "user", "content": "hi"}]}).status_code == 401
        assert httpx.get(g.url + "/dashboard/api/recent", headers=h).status_code == 401
        assert httpx.get(g.url + "/v1/tierwise/approvals", headers=h).status_code == 401
    # the right keys still open what they open
    oai(g, api_key=KEYS["TW_CMP_CLIENT"]).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(g.url + "/metrics", headers={"authorization": f"Bearer {KEYS['TW_CMP_VIEW']}"}).status_code == 200
    assert httpx.get(g.url + "/v1/tierwise/approvals",
                     headers={"authorization": f"Bearer {KEYS['TW_CMP_ADMIN']}"}).status_code == 404  # (no gates here)
    assert len(seen) >= 3 * len(GUESSES)
    assert all(a == b for a, b in seen), f"compared values of different lengths: {sorted(set(seen))}"


def test_the_mcp_token_is_compared_as_a_digest(monkeypatch):
    from tierwise.mcp_http import BearerAuth

    token = "t" * 43
    auth = BearerAuth(lambda *a: None, token)
    seen = _recording(monkeypatch)
    for given in ("short", "t" * 42, token, "t" * 400):
        ok = auth._authorized({"headers": [(b"authorization", f"Bearer {given}".encode())]})
        assert ok is (given == token)
    assert seen and all(a == b for a, b in seen), seen
