"""The real Claude Code CLI through the gateway: each traffic class takes the route a rule gave it.

One scripted session (tests/clients/claude_code_session.py) makes Claude Code send a title request,
main turns, a WebFetch page summary, a subagent's turn and, in a second run, a /compact summary. The
gateway's rules send each class to its own model on the scripted Anthropic upstream, so the model id
that arrived upstream says which rule fired; the script's own label says what the request was for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.anthropic_scripted import ScriptedAnthropicUpstream
from tests.clients.claude_code_session import (
    DONE_TEXT,
    PAGE_HTML,
    PAGE_PATH,
    SessionScript,
    cli_env,
    run_session,
)
from tests.clients.test_claude_code import claude_bin  # noqa: F401  (fixture)
from tests.harness import GatewayServer, make_config

CLASS_MODELS = {"compact": "up-compact", "subagent": "up-subagent", "title": "up-title",
                "web_fetch": "up-web-fetch", "main": "up-main"}
# the script's label -> the class the gateway must have recognised
LABEL_CLASS = {"structured": "title", "side": "web_fetch", "subagent": "subagent", "compact": "compact"}


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[SessionScript, ScriptedAnthropicUpstream]]:
    script = SessionScript(page_url="")
    up = ScriptedAnthropicUpstream(script.decide, pages={PAGE_PATH: PAGE_HTML}, tls_dir=tmp_path / "tls").start()
    script.page_url = up.https_url + PAGE_PATH
    yield script, up
    up.stop()


def rules_config(up: ScriptedAnthropicUpstream, tmp_path: Path, rules: list[dict]) -> GatewayServer:
    cfg = {
        "server": {"default_route": "claude-code"},
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {"up": {"kind": "anthropic", "base_url": up.url}},
        "models": {f"m-{c}": {"provider": "up", "model": m} for c, m in CLASS_MODELS.items()},
        "routes": {"claude-code": {"policy": "rules", "rules": rules, "default": "m-main"}},
    }
    return GatewayServer(make_config(cfg, tmp_path)).start()


def test_each_claude_code_class_takes_its_rule(claude_bin: str, tmp_path: Path,  # noqa: F811
                                                session: tuple[SessionScript, ScriptedAnthropicUpstream]) -> None:
    script, up = session
    rules = [{"name": f"cc-{c}", "match": {"claude_code": c}, "target": f"m-{c}"}
             for c in ("compact", "subagent", "title", "web_fetch")]
    g = rules_config(up, tmp_path, rules)
    try:
        env = cli_env(tmp_path / "home", g.url, ca_cert=up.cert)
        del env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"]  # titles are "nonessential" traffic
        work = tmp_path / "project"
        work.mkdir()
        procs = run_session(claude_bin, work, env, script.page_url)
        g.flush()
        rows = g.ledger.query(route="claude-code")
    finally:
        g.stop()
    detail = "\n".join(f"exit {p.returncode}: {p.stdout[-1500:]} {p.stderr[-1500:]}" for p in procs)
    assert all(p.returncode == 0 for p in procs), detail
    assert DONE_TEXT in procs[0].stdout, detail

    seen = [(m.answered, m.model) for m in up.messages()]
    labels = {label for label, _ in seen}
    assert {"structured", "side", "subagent", "compact", "main:final"} <= labels, seen
    for label, model in seen:
        cls = LABEL_CLASS.get(label, "main" if label.startswith("main:") else None)
        assert cls is not None, seen
        assert model == CLASS_MODELS[cls], (label, model, seen)

    # the trace says which rule fired and why
    reasons = " | ".join(r.reason or "" for r in rows)
    for c in ("title", "web_fetch", "subagent", "compact"):
        assert f"cc-{c}: Claude Code {c}" in reasons, reasons
    assert all(r.status == 200 for r in rows), [(r.status, r.error_message) for r in rows]


def test_background_group_and_the_subagent_header_rule(claude_bin: str, tmp_path: Path,  # noqa: F811
                                                       session: tuple[SessionScript, ScriptedAnthropicUpstream]) -> None:
    """`claude_code: background` takes titles and page summaries together; the older `subagent: true`
    header rule still catches subagents."""
    script, up = session
    rules = [{"name": "subagents", "match": {"subagent": True}, "target": "m-subagent"},
             {"name": "background", "match": {"claude_code": "background"}, "target": "m-title"}]
    g = rules_config(up, tmp_path, rules)
    try:
        env = cli_env(tmp_path / "home", g.url, ca_cert=up.cert)
        del env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"]
        work = tmp_path / "project"
        work.mkdir()
        procs = run_session(claude_bin, work, env, script.page_url)[:1]
    finally:
        g.stop()
    assert procs[0].returncode == 0, procs[0].stdout[-1500:] + procs[0].stderr[-1500:]
    seen = [(m.answered, m.model) for m in up.messages()]
    want = {"structured": "up-title", "side": "up-title", "subagent": "up-subagent"}
    for label, model in seen:
        assert model == want.get(label, "up-main"), (label, seen)
    assert {"structured", "side", "subagent"} <= {label for label, _ in seen}


def test_with_an_anthropic_shaped_key_page_summaries_ask_for_a_haiku_model(
        claude_bin: str, tmp_path: Path,  # noqa: F811
        session: tuple[SessionScript, ScriptedAnthropicUpstream]) -> None:
    """The transcripts were recorded with a test key (`sk-ant-test-...`), and Claude Code then sends every class
    with the main model id. With a key shaped like Anthropic's (`sk-ant-api03-...`: what a user exports, and what
    `tierwise claude` hands on to a gateway on this machine) Claude Code 2.1.197 asks for its haiku model for the
    page summary, so a `*haiku*` rule fires there too; `claude_code: background` catches it either way."""
    script, up = session
    rules = [{"name": "background", "match": {"claude_code": "background"}, "target": "m-title"}]
    g = rules_config(up, tmp_path, rules)
    try:
        env = cli_env(tmp_path / "home", g.url, ca_cert=up.cert)
        env["ANTHROPIC_API_KEY"] = "sk-ant-api03-" + "x" * 86 + "-AA"
        work = tmp_path / "project"
        work.mkdir()
        procs = run_session(claude_bin, work, env, script.page_url)[:1]
        g.flush()
        rows = g.ledger.query(route="claude-code")
    finally:
        g.stop()
    assert procs[0].returncode == 0, procs[0].stdout[-1500:] + procs[0].stderr[-1500:]
    seen = [(m.answered, m.model) for m in up.messages()]
    assert ("side", "up-title") in seen, seen  # the page summary, by its class
    asked = {r.requested_model or "" for r in rows if "background:" in (r.reason or "")}
    assert asked and all("haiku" in m for m in asked), [(r.requested_model, r.reason) for r in rows]
    assert not any("haiku" in (r.requested_model or "") for r in rows if "background:" not in (r.reason or ""))
