"""A base_url with a query string (`?key=…`, Azure's `?api-version=…`) and `tierwise init --local` given a URL with
credentials (session 37, secrets37). Before: every endpoint was the base URL with `/chat/completions` glued to its
end, inside the last query value (`key=K/chat/completions`): the upstream got the base path and a key it could not
match; `tierwise init` probed `…?key=K/models` the same way and printed the URL, password and key included, on the
terminal. Real HTTP on loopback, the official SDKs, doubles upstream."""

from __future__ import annotations

from click.testing import CliRunner

from tests.gateway.conftest import ant, oai
from tests.harness import free_port, two_tier_config
from tierwise.cli import main

KEY = "qk-7d1e93b0c4a25f86e1"
PASSWORD = "pw-51c0e9a7d2b8f3146a"


def test_a_key_in_the_base_url_query_reaches_the_upstream_whole(gateway, openai_up, anthropic_up) -> None:
    cfg = two_tier_config(openai_up.url, anthropic_up.url)
    cfg["providers"]["localsrv"]["base_url"] = f"{openai_up.url}/v1?key={KEY}&api-version=2024-10-21"
    cfg["providers"]["cloud"]["base_url"] = f"{anthropic_up.url}/?key={KEY}"
    g = gateway(cfg)
    oai(g).chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}])
    got = openai_up.requests[-1]
    assert (got.path, got.query) == ("/v1/chat/completions", {"key": KEY, "api-version": "2024-10-21"}), got
    ant(g).messages.create(model="frontier", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    got = anthropic_up.requests[-1]
    assert (got.path, got.query) == ("/v1/messages", {"key": KEY}), got


def test_init_reads_the_model_list_under_a_query_and_never_prints_the_urls_credentials(openai_up, tmp_path) -> None:
    url = openai_up.url + f"/v1/?key={KEY}"
    r = CliRunner().invoke(main, ["init", "--path", str(tmp_path / "a.yaml"), "--local", url])
    assert r.exit_code == 0, r.output
    assert "did not answer" not in r.output, r.output  # it found the model list at /v1/models?key=...
    assert any(q.path == "/v1/models" and q.query == {"key": KEY} for q in openai_up.requests), openai_up.requests
    dead = f"http://user:{PASSWORD}@127.0.0.1:{free_port()}/v1/chat/completions?key={KEY}"
    r = CliRunner().invoke(main, ["init", "--path", str(tmp_path / "b.yaml"), "--local", dead])
    assert r.exit_code == 0 and "did not answer" in r.output, r.output
    assert PASSWORD not in r.output and KEY not in r.output and "user:" not in r.output, r.output
