"""`tierwise doctor` (and `serve`) warn when the Redis answer cache shares its server with the budgets,
dispatch or approvals: clients' answers fill the server's one maxmemory, after which Redis refuses the
budgets' writes (every budgeted request 503) or evicts their counters (spend under-counted)
(bench/redis_shared_memory.py)."""

from __future__ import annotations

from click.testing import CliRunner

from tests.harness import free_port
from tierwise.cli import main

WARNING = "the Redis answer cache is on the same Redis server"


def config(cache_port: int, budgets_port: int) -> str:
    return f"""
providers:
  cloud: {{kind: openai, base_url: "http://127.0.0.1:{free_port()}/v1", locality: remote}}
models:
  frontier: {{provider: cloud, model: big, price: {{input: 3, output: 15}}}}
routes:
  main: {{policy: fallback, targets: [frontier]}}
cache: {{enabled: true, backend: redis, redis_url: "redis://:pw-of-the-cache@127.0.0.1:{cache_port}/3",
         all_routes: true}}
budgets:
  store: {{backend: redis, redis_url: "redis://u:pw-of-the-budgets@127.0.0.1:{budgets_port}/0"}}
  limits: [{{name: day, usd: 10}}]
"""


def test_doctor_warns_when_the_cache_shares_the_budgets_redis_server(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    port = free_port()
    (tmp_path / "shared.yaml").write_text(config(port, port))  # another database, the same server
    out = CliRunner().invoke(main, ["doctor", "-c", "shared.yaml"]).output
    assert WARNING in out and f"127.0.0.1:{port}) as budgets.store" in out
    assert "pw-of-the" not in out
    (tmp_path / "apart.yaml").write_text(config(port, free_port()))
    out = CliRunner().invoke(main, ["doctor", "-c", "apart.yaml"]).output
    assert WARNING not in out and "redis 127.0.0.1" in out


def test_doctor_checks_the_approvals_redis(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    port = free_port()
    monkeypatch.setenv("TW_ADMIN", "admin-key")
    (tmp_path / "tw.yaml").write_text(config(free_port(), free_port()) + f"""
server: {{admin_keys_env: [TW_ADMIN]}}
approvals:
  store: {{backend: redis, redis_url: "redis://u:pw-of-the-approvals@127.0.0.1:{port}/0"}}
  routes: {{main: {{timeout: 60}}}}
""")
    out = CliRunner().invoke(main, ["doctor", "-c", "tw.yaml"]).output
    assert f"✗ redis 127.0.0.1:{port} (approvals.store): unreachable" in out and "pw-of-the" not in out


def test_doctor_checks_the_blackboards_and_the_dashboards_own_redis(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    board, presence = free_port(), free_port()
    (tmp_path / "tw.yaml").write_text(config(free_port(), free_port()) + f"""
blackboard: {{enabled: true, redis_url: "redis://u:pw-of-the-board@127.0.0.1:{board}/0"}}
observability:
  dashboard: {{presence_redis_url: "redis://u:pw-of-the-presence@127.0.0.1:{presence}/0"}}
""")
    out = CliRunner().invoke(main, ["doctor", "-c", "tw.yaml"]).output
    assert f"✗ redis 127.0.0.1:{board} (blackboard): unreachable" in out
    assert f"✗ redis 127.0.0.1:{presence} (observability.dashboard.presence): unreachable" in out
    assert "pw-of-the" not in out


def test_doctor_warns_when_the_budgets_redis_evicts(tmp_path, monkeypatch, own_redis):
    """An evicting `maxmemory-policy` on the budgets' Redis forgets spend (bench/team_chaos.py --scenario evict:
    $2.31 paid of a $2 budget); `doctor` said nothing (session 24, team-ops)."""
    import redis

    monkeypatch.chdir(tmp_path)
    r = own_redis(appendonly=False)
    c = redis.Redis(port=r.port)
    c.config_set("maxmemory", "100mb")
    c.config_set("maxmemory-policy", "volatile-lru")  # every budget key has a TTL: volatile-* evicts them too
    (tmp_path / "tw.yaml").write_text(config(free_port(), r.port).replace("u:pw-of-the-budgets@", ""))
    out = CliRunner().invoke(main, ["doctor", "-c", "tw.yaml"]).output
    assert f"! redis 127.0.0.1:{r.port} (budgets.store) evicts keys at its maxmemory (maxmemory-policy volatile-lru)" \
        in out, out
    c.config_set("maxmemory-policy", "noeviction")
    out = CliRunner().invoke(main, ["doctor", "-c", "tw.yaml"]).output
    assert "evicts keys" not in out and f"✓ redis 127.0.0.1:{r.port} (budgets.store)" in out, out
    c.close()
