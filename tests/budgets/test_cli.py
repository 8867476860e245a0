"""`tierwise budgets`: usage and what remains, from a running gateway (memory) or from Redis."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest
import yaml
from click.testing import CliRunner

from tests.budgets.conftest import STORE_TIMEOUT_S
from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config
from tierwise.cli import main

from .conftest import REDIS_URL

USAGE = (40, 400)
COST = (40 * 3 + 400 * 15) / 1e6


def spend_some(g):
    oai(g).chat.completions.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "x"}],
                                   extra_headers={"x-tierwise-session": "s1"})
    ant(g).messages.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "x"}],
                           extra_headers={"x-tierwise-session": "s2"})
    g.flush()


def test_budgets_command_reads_a_running_gateway(gateway, openai_up, anthropic_up, tmp_path, monkeypatch):
    monkeypatch.setenv("GW_KEY", "gw-secret")
    monkeypatch.setenv("ADMIN_KEY", "admin-secret")
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, budgets={"limits": [
        {"name": "daily", "usd": 2.0}, {"name": "per-session", "per": "session", "tokens": 10_000,
                                        "window": {"rolling": "1h"}}]})
    cfg["server"]["api_keys_env"] = ["GW_KEY"]
    cfg["server"]["admin_keys_env"] = ["ADMIN_KEY"]  # the command asks with it: every bucket
    g = gateway(cfg)
    (tmp_path / "tw.yaml").write_text(yaml.safe_dump(cfg))
    oc = oai(g, api_key="gw-secret")
    oc.chat.completions.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "x"}],
                               extra_headers={"x-tierwise-session": "s1"})
    ant(g, api_key="gw-secret").messages.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "x"}],
                                                extra_headers={"x-tierwise-session": "s2"})
    g.flush()
    res = CliRunner().invoke(main, ["budgets", "-c", str(tmp_path / "tw.yaml"), "--url", g.url, "--json"])
    assert res.exit_code == 0, res.output
    data = orjson.loads(res.output)
    rows = {(r["budget"], r["value"]): r for r in data["budgets"]}
    assert rows[("daily", "*")]["usd_used"] == round(2 * COST, 6)
    assert rows[("daily", "*")]["usd_remaining"] == round(2.0 - 2 * COST, 6)
    assert rows[("daily", "*")]["resets_at"].endswith("T00:00:00Z")
    # (a session is the naming key's own: its bucket is named by the key's name, docs/budgets.md)
    assert rows[("per-session", "GW_KEY/s1")]["tokens_used"] == 440
    assert rows[("per-session", "GW_KEY/s2")]["tokens_remaining"] == 9560
    table = CliRunner().invoke(main, ["budgets", "-c", str(tmp_path / "tw.yaml"), "--url", g.url])
    assert table.exit_code == 0 and "per-session" in table.output and "session GW_KEY/s1" in table.output
    # with the gateway key: its own buckets (sessions are any client's text), as a table too
    own = CliRunner().invoke(main, ["budgets", "-c", str(tmp_path / "tw.yaml"), "--url", g.url, "--key-env", "GW_KEY"])
    assert own.exit_code == 0 and "daily" in own.output and "/s1" not in own.output, own.output
    monkeypatch.setenv("ADMIN_KEY", "wrong")
    denied = CliRunner().invoke(main, ["budgets", "-c", str(tmp_path / "tw.yaml"), "--url", g.url])
    assert denied.exit_code != 0 and "401" in denied.output
    assert "the key in ADMIN_KEY was refused" in denied.output and "wrong" not in denied.output
    # A new shell without the admin key (the usual first try): before, only "invalid or missing API key"; now the
    # command says which variable it read and that it is not set here.
    monkeypatch.delenv("ADMIN_KEY")
    unset = CliRunner().invoke(main, ["budgets", "-c", str(tmp_path / "tw.yaml"), "--url", g.url])
    assert unset.exit_code != 0 and "401" in unset.output, unset.output
    assert "this command sent no key: ADMIN_KEY is not set in this shell (export it, or name another variable " \
           "with --key-env NAME)" in unset.output


def test_budgets_table_shows_a_small_limit_as_configured(gateway, openai_up, anthropic_up, tmp_path):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, budgets={"limits": [{"name": "tiny", "usd": 0.00005}]})
    g = gateway(cfg)
    (tmp_path / "tw.yaml").write_text(yaml.safe_dump(cfg))
    table = CliRunner().invoke(main, ["budgets", "-c", str(tmp_path / "tw.yaml"), "--url", g.url])
    assert table.exit_code == 0, table.output
    [row] = [line for line in table.output.splitlines() if "tiny" in line]
    assert "0.00005 " in row and " 0.00 " not in row and "e-05" not in row, row


def test_budgets_command_reads_redis(gateway, openai_up, anthropic_up, tmp_path, redis_prefix):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, budgets={
        "store": {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": redis_prefix, "timeout": STORE_TIMEOUT_S},
        "limits": [{"name": "monthly", "usd": 10.0, "window": "month"}]})
    g = gateway(cfg)
    spend_some(g)
    (tmp_path / "tw.yaml").write_text(yaml.safe_dump(cfg))
    g.stop()  # the numbers live in Redis, not in the gateway
    res = CliRunner().invoke(main, ["budgets", "-c", str(tmp_path / "tw.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    row = orjson.loads(res.output)["budgets"][0]
    assert row["budget"] == "monthly" and row["usd_used"] == round(2 * COST, 6)
    assert row["resets_at"][8:] == "01T00:00:00Z"


def test_report_counts_refusals_and_downgrades(gateway, openai_up, anthropic_up, tmp_path):
    import openai
    import pytest

    anthropic_up.default = Reply(text="ok", usage=USAGE)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
        "strict": {"policy": "fallback", "targets": ["frontier"], "retries": 0}},
        budgets={"limits": [{"name": "cap", "usd": COST / 2}], "routes": {"main": {"on_exhausted": "downgrade"}}})
    g = gateway(cfg)
    (tmp_path / "tw.yaml").write_text(yaml.safe_dump(cfg))
    ask = lambda model: oai(g).chat.completions.create(  # noqa: E731
        model=model, max_tokens=500, messages=[{"role": "user", "content": "x"}])
    ask("main")  # spends the budget
    ask("main")  # downgraded
    ask("main")  # downgraded
    with pytest.raises(openai.RateLimitError):
        ask("strict")
    g.flush()
    res = CliRunner().invoke(main, ["report", "-c", str(tmp_path / "tw.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["budgets"] == {"cap": {"refused": 1, "downgraded": 2}}
    table = CliRunner().invoke(main, ["report", "-c", str(tmp_path / "tw.yaml")])
    assert "budget cap: 1 request(s) refused, 2 downgraded to the local tier" in table.output


def test_a_team_key_sees_only_its_own_buckets(gateway, openai_up, anthropic_up, monkeypatch):
    # A key belongs to one client: other keys' spend and other clients' session ids are not its business,
    # whether it is limited to some routes or not. An admin key sees every bucket.
    import httpx2

    monkeypatch.setenv("OPS_KEY", "ops-secret")
    monkeypatch.setenv("ADMIN_KEY", "admin-secret")
    monkeypatch.setenv("TEAM_A", "team-a-secret")
    monkeypatch.setenv("TEAM_B", "team-b-secret")
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    cfg = two_tier_config(openai_up.url, anthropic_up.url, budgets={"limits": [
        {"name": "daily", "usd": 2.0}, {"name": "per-key", "per": "key", "usd": 1.0},
        {"name": "per-session", "per": "session", "tokens": 10_000}]})
    cfg["server"]["api_keys_env"] = ["OPS_KEY", {"env": "TEAM_A", "name": "team-a", "routes": ["main"]},
                                     {"env": "TEAM_B", "name": "team-b", "routes": ["main"]}]
    cfg["server"]["admin_keys_env"] = ["ADMIN_KEY"]
    g = gateway(cfg)
    for key, session in (("team-a-secret", "alice-session"), ("team-b-secret", "bob-session")):
        oai(g, api_key=key).chat.completions.create(model="main", max_tokens=500, messages=[{"role": "user", "content": "x"}],
                                                    extra_headers={"x-tierwise-session": session})
    g.flush()

    def seen(key: str) -> set[tuple[str, str]]:
        r = httpx2.get(g.url + "/v1/tierwise/budgets", headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        return {(row["budget"], row["value"]) for row in r.json()["budgets"]}

    assert seen("team-a-secret") == {("daily", "*"), ("per-key", "team-a")}
    assert seen("ops-secret") == {("daily", "*")}  # unscoped, but not the operator: no one else's buckets
    assert {("per-key", "team-b"), ("per-session", "team-a/alice-session"),
            ("per-session", "team-b/bob-session")} <= seen("admin-secret")


def test_requests_and_the_ledger_tell_a_spent_budget_from_a_rate_limit(two_tier, openai_up, anthropic_up, tmp_path):
    """The OpenAI client gets `insufficient_quota` for a spent budget and Anthropic's client its only 429 type;
    the ledger row and `tierwise requests` say `budget_exceeded`, not a rate limit, and a real rate limit
    still reads `rate_limit_error`."""
    anthropic_up.default = Reply(text="paid", usage=USAGE)
    openai_up.default = Reply(text="local", usage=(5, 5))
    routes = {"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0},
              "cheap": {"policy": "fallback", "targets": ["local"], "retries": 0}}
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes=routes,
                          budgets={"limits": [{"name": "cap", "usd": COST * 0.5, "routes": ["main"]}]},
                          rate_limits={"limits": [{"name": "rpm", "per": "route", "routes": ["cheap"],
                                                   "requests_per_minute": 1}]})
    g = two_tier(**{k: v for k, v in cfg.items() if k in ("routes", "budgets", "rate_limits")})
    (tmp_path / "tw.yaml").write_text(yaml.safe_dump(cfg))

    def ask(client_api, route):
        if client_api == "openai":
            return oai(g).chat.completions.create(model=route, max_tokens=500, messages=[{"role": "user", "content": "x"}])
        return ant(g).messages.create(model=route, max_tokens=500, messages=[{"role": "user", "content": "x"}])

    ask("openai", "main")  # spends the budget
    with pytest.raises(openai.RateLimitError) as spent_o:
        ask("openai", "main")
    assert spent_o.value.body["code"] == "insufficient_quota"
    with pytest.raises(anthropic.RateLimitError) as spent_a:
        ask("anthropic", "main")
    assert spent_a.value.body["error"]["type"] == "rate_limit_error"
    assert "budget 'cap'" in spent_a.value.body["error"]["message"]
    ask("openai", "cheap")
    with pytest.raises(openai.RateLimitError) as limited:
        ask("openai", "cheap")
    assert limited.value.body["code"] == "rate_limit_exceeded"
    g.flush()
    refused = [r for r in g.ledger.query() if r.status == 429]
    by_route = sorted((r.route, r.client_format, r.error_kind) for r in refused)
    assert by_route == [("cheap", "openai", "rate_limit_error"), ("main", "anthropic", "budget_exceeded"),
                        ("main", "openai", "budget_exceeded")]
    res = CliRunner().invoke(main, ["requests", "-c", str(tmp_path / "tw.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    rows = orjson.loads(res.output)
    assert sorted((r["route"], r["error_kind"]) for r in rows if r["status"] == 429) == [
        ("cheap", "rate_limit_error"), ("main", "budget_exceeded"), ("main", "budget_exceeded")]
    table = CliRunner().invoke(main, ["requests", "-c", str(tmp_path / "tw.yaml")])
    assert table.exit_code == 0 and table.output.count("429 budget_exceeded") == 2, table.output
    assert table.output.count("429 rate_limit_error") == 1


def test_doctor_says_a_memory_store_cap_is_counted_per_process(tmp_path, monkeypatch):
    """`tierwise mcp` builds a gateway of its own: with the memory store its ensemble runs count in their own
    process, and the gateway and the MCP server together spend a cap covering every route twice. doctor says so
    (and `tierwise mcp` at start); a Redis store, or a cap only some gateway routes carry, is one count."""
    from tests.harness import free_port

    monkeypatch.chdir(tmp_path)
    warning = "use the memory store: `tierwise serve` and `tierwise mcp`"

    def doctor(budgets: dict) -> str:
        cfg = two_tier_config(f"http://127.0.0.1:{free_port()}/v1", f"http://127.0.0.1:{free_port()}")
        cfg["budgets"] = budgets
        (tmp_path / "tw.yaml").write_text(yaml.safe_dump(cfg))
        return CliRunner().invoke(main, ["doctor", "-c", "tw.yaml"]).output

    out = doctor({"limits": [{"name": "day", "usd": 10}, {"name": "main-only", "usd": 5, "routes": ["main"]}]})
    assert warning in out and "'day'" in out and "'main-only'" not in out
    assert warning not in doctor({"limits": [{"name": "main-only", "usd": 5, "routes": ["main"]}]})
    assert warning not in doctor({"store": {"backend": "redis", "redis_url": REDIS_URL},
                                  "limits": [{"name": "day", "usd": 10}]})
