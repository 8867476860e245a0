"""The scrubber on its own: what it finds (values, encodings, fragments, key shapes, secrets the
config holds in headers and URLs, keys rotated after start) and what it must leave alone."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.harness import make_config
from tierwise import secret_scrub
from tierwise.errors import UpstreamError
from tierwise.secret_scrub import REDACTED, SecretScrubber, config_secrets

KEY = "tw-unit-" + secrets.token_hex(20)


@pytest.mark.parametrize("spelling", [
    KEY, KEY.upper(), quote(KEY, safe=""), json.dumps({"k": KEY}), KEY.encode().hex(),
    base64.b64encode(f"Bearer {KEY}".encode()).decode(), base64.urlsafe_b64encode(f"u:{KEY}".encode()).decode(),
    base64.b64encode(f"xy{KEY}".encode()).decode(), KEY[:20], KEY[-15:], f"{KEY[:24]}…{KEY[24:]}",
], ids=["plain", "upper", "url-quoted", "json", "hex", "base64-bearer", "base64url-basic", "base64-shifted",
        "head", "tail", "ellipsis"])  # fixed ids: the key is random, and parallel workers must collect alike
def test_every_spelling_of_a_known_secret_is_removed(spelling: str) -> None:
    s = SecretScrubber([KEY])
    out = s.scrub(f"upstream said: {spelling} (end)")
    assert out.startswith("upstream said: ") and out.endswith(" (end)") and REDACTED in out
    for i in range(len(KEY) - 11):
        assert KEY[i : i + 12].lower() not in out.lower()


@pytest.mark.parametrize("text", [
    "Authorization: Bearer abcdefghijklmnop", "x-api-key: \"q1w2e3r4t5y6u7i8\"", '{"api_key": "q1w2e3r4t5y6u7i8"}',
    "sk-ant-api03-" + "A" * 40, "sk-proj-" + "b" * 30, "AKIAIOSFODNN7EXAMPLE", "ghp_" + "c" * 36,
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl", "https://bob:hunter2hunter2@example.com/v1",
    "GET /v1/x?key=AIzaSyD-abcdefghijklmnopqrstuvwxyz12345", "token=abcdef0123456789",
])
def test_key_shapes_are_removed_without_knowing_the_value(text: str) -> None:
    out = SecretScrubber().scrub(text)
    assert REDACTED in out, out


@pytest.mark.parametrize("text", [
    "max_tokens: 4096 exceeds the limit; input_tokens: 12", "task-scheduler-is-a-long-word",
    "see https://platform.openai.com/account/api-keys", "monkey=bananabananabanana", "Asia-Pacific region",
    "model qwen2.5-coder-7b-instruct is loading", "bearer of bad news",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert SecretScrubber([KEY]).scrub(text) == text


def test_config_secrets_include_headers_url_credentials_and_client_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_UNIT_UP", "up-" + "1" * 20)
    monkeypatch.setenv("TW_UNIT_CLIENT", "client-" + "2" * 20)
    monkeypatch.setenv("TW_UNIT_SCOPED", "scoped-" + "3" * 20)
    cfg = make_config({
        "server": {"api_keys_env": ["TW_UNIT_CLIENT", {"env": "TW_UNIT_SCOPED", "routes": []}]},
        "providers": {"p": {"kind": "anthropic", "base_url": "https://user:pw-secret-123@host.example?api_key=q-secret-456",
                            "api_key_env": "TW_UNIT_UP",
                            "headers": {"X-Custom-Auth": "Bearer hdr-secret-789", "X-Title": "my app"}}},
    }, tmp_path)
    found = config_secrets(cfg)
    for s in ("up-" + "1" * 20, "client-" + "2" * 20, "scoped-" + "3" * 20, "pw-secret-123", "q-secret-456", "hdr-secret-789"):
        assert s in found
    assert "my app" not in found  # not a secret-bearing header


def test_a_key_rotated_after_start_is_known_before_it_is_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tierwise.providers.http import Provider

    cfg = make_config({"providers": {"p": {"kind": "anthropic", "base_url": "http://127.0.0.1:1",
                                           "api_key_env": "TW_UNIT_ROTATE"}}}, tmp_path)
    p = Provider("p", cfg.providers["p"], lambda: None)
    rotated = "rotated-" + secrets.token_hex(16)
    monkeypatch.setenv("TW_UNIT_ROTATE", rotated)
    assert p.headers()["x-api-key"] == rotated
    assert rotated not in UpstreamError(f"upstream says {rotated}").message


def test_every_tierwise_error_message_is_scrubbed() -> None:
    secret_scrub.register([KEY])
    assert KEY not in UpstreamError(f"provider 'x' answered HTTP 401: bad key {KEY}").message
    assert KEY not in str(UpstreamError(f"{quote(KEY, safe='')}"))


def test_ensemble_agent_errors_are_scrubbed_where_they_leave() -> None:
    """An agent's error (a script's stderr, an exception's text) reaches MCP clients and artifacts."""
    from tierwise.ensembles.results import AgentResult, ItemResult

    secret_scrub.register([KEY])
    d = AgentResult("a", "script", status="failed", error=f"stderr: {KEY}",
                    items=[ItemResult(0, "failed", error=f"Authorization: Bearer {KEY}")]).to_dict()
    assert KEY not in str(d) and REDACTED in d["error"] and REDACTED in d["items"][0]["error"]


def test_config_secrets_include_admin_viewer_receiver_redis_and_privacy_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets the gateway holds beyond the upstream and client keys, under variable names that do not say
    `KEY` or `TOKEN` (so the environment sweep does not find them): the scrubber knew none of them."""
    values = {"TW_UNIT_ADMIN": "adm-" + secrets.token_hex(12), "TW_UNIT_VIEWER": "view-" + secrets.token_hex(12),
              "TW_UNIT_AES": secrets.token_hex(32)}
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    receiver, bearer, redis_pw = "team-" + secrets.token_hex(10), "otlp-" + secrets.token_hex(10), secrets.token_hex(10)
    cfg = make_config({
        "server": {"admin_keys_env": ["TW_UNIT_ADMIN"]},
        "providers": {"p": {"kind": "anthropic", "base_url": "http://127.0.0.1:1"}},
        "cache": {"redis_url": f"redis://:{redis_pw}@127.0.0.1:6379/0"},
        "privacy": {"ner": {"enabled": False}, "classes": {"pii": {}}, "policy": {"pii": "redact"},
                    "mapping": {"key_env": "TW_UNIT_AES"}},
        "observability": {"dashboard": {"enabled": True, "viewer_keys_env": ["TW_UNIT_VIEWER"]},
                          "tracing": {"endpoint": "http://127.0.0.1:4318/v1/traces",
                                      "headers": {"x-honeycomb-team": receiver, "authorization": f"Bearer {bearer}"}}},
    }, tmp_path)
    found = config_secrets(cfg)
    for s in (*values.values(), receiver, bearer, redis_pw):
        assert s in found, s


def test_the_verdicts_remembered_for_ledger_texts_are_bounded_in_count():
    """`holds` remembers its verdict per short text (ledger records repeat their reasons); the texts carry
    client-chosen values (model names, headers), so a client sending new ones must not grow it for ever."""
    secret = "sk-verdict-secret-1234567890abcdef"
    s = SecretScrubber([secret])
    sizes = []
    for i in range(10_000):
        assert s.holds(f"rule matched model claude-{i:05d}-{'x' * 500}") is False
        sizes.append(len(s._verdicts))
    assert max(sizes) <= 4096, max(sizes)
    assert s.holds(f"a reason quoting {secret}") is True  # the verdicts are still right after a clear


def test_the_otlp_endpoints_own_credentials_are_known(tmp_path: Path) -> None:
    """docs/security/secrets.md lists the OTLP endpoint among the URLs whose credentials the scrubber knows: only
    fields named `*url` were read, and `observability.tracing.endpoint` is not one (a receiver's password in
    the URL, or its key as a query value, `?api-key=...`, as some vendors take it)."""
    password, query_key = "otlp-pw-" + secrets.token_hex(10), "otlp-q-" + secrets.token_hex(10)
    cfg = make_config({
        "providers": {"p": {"kind": "anthropic", "base_url": "http://127.0.0.1:1"}},
        "observability": {"tracing": {"endpoint": f"https://team:{password}@127.0.0.1:4318/v1/traces?api-key={query_key}"}},
    }, tmp_path)
    found = config_secrets(cfg)
    assert password in found and query_key in found, found


_TAIL = "Zq" + secrets.token_hex(12)  # what must not survive: the end of a long key, or a key after a long value


@pytest.mark.parametrize("text", [
    "sk-" + "a1" * 2600 + _TAIL, "api_key=" + "b2" * 2600 + _TAIL, "Authorization: Bearer " + "c3" * 3000 + _TAIL,
    "eyJhbGciOiJI." + "eyJ" + "e5" * 150 + ".sig0sig0sig." + _TAIL,
    "password_for_the_production_database_of_the_main_customer_account_holder = " + _TAIL,
    "redis://u" + "v6" * 2100 + ":" + _TAIL + "@cache:6379/0",
], ids=["sk-longer-than-window", "kv-longer-than-window", "bearer-longer-than-window",
        "jwt-nested-in-jwt", "key-name-of-72", "url-user-longer-than-window"])
def test_what_the_unbounded_shapes_redacted_is_still_redacted(text: str) -> None:
    """review24b: bounding each shape's match to 4,096 characters and skipping anchors nested in a match of the
    same shape (attack-secrets) left out what the unbounded shapes had caught: the part of a key past 4,096
    characters (a long JWT or bearer token), the last segment of a JWT reached only from a nested `eyJ`, and a key named by more than 64
    characters (`password_for_...`, the anchor counted in), the password of a URL whose user name runs past
    4,096 characters."""
    out = SecretScrubber().scrub(text)
    assert _TAIL not in out and _TAIL[:12] not in out, out[-80:]
