"""`serve` checks the eviction policy of the Redis holding budgets (and dispatch, approvals) before serving: under an
evicting `maxmemory-policy` a counter evicted is spend forgotten (bench/team_chaos.py --scenario evict: $2.31 paid of
a $2 budget). Only `doctor` said so before session 31 (costs3): `serve` started silently on such a Redis."""

from __future__ import annotations

from tests.harness import one_model_config
from tierwise.commands.serve import redis_refusals_or_exit
from tierwise.config import load_config


def test_serve_warns_when_the_budgets_redis_evicts(tmp_path, own_redis, capsys):
    import redis

    r = own_redis(appendonly=False)
    c = redis.Redis(port=r.port)
    c.config_set("maxmemory", "100mb")
    c.config_set("maxmemory-policy", "volatile-lru")  # every budget counter has a TTL: volatile-* evicts them too
    cfg = load_config(one_model_config(tmp_path, f"""\
budgets:
  store: {{backend: redis, redis_url: "redis://:pw-of-the-budgets@127.0.0.1:{r.port}/0"}}
  limits: [{{name: day, usd: 10}}]
"""))
    c.config_set("requirepass", "pw-of-the-budgets")
    c = redis.Redis(port=r.port, password="pw-of-the-budgets")
    redis_refusals_or_exit(cfg)
    err = capsys.readouterr().err
    assert f"tierwise: warning: Redis at 127.0.0.1:{r.port} (budgets.store) evicts keys at its maxmemory " \
           "(maxmemory-policy volatile-lru)" in err, err
    assert "maxmemory-policy noeviction" in err and "pw-of-the" not in err
    c.config_set("maxmemory-policy", "noeviction")
    redis_refusals_or_exit(cfg)
    assert "evicts" not in capsys.readouterr().err
    c.config_set("maxmemory-policy", "allkeys-lru")
    c.config_set("maxmemory", "0")  # no maxmemory: nothing is evicted whatever the policy
    redis_refusals_or_exit(cfg)
    assert "evicts" not in capsys.readouterr().err
    c.close()
