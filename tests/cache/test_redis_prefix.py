"""The Redis cache's SCANs (stats, invalidate, clear) touch its own entries only, whatever its prefix.

`<prefix>*:*:*` matched every key under the prefix: a cache prefix that is also the prefix of the
budgets' (or dispatch's, or the approvals') keys made `tierwise cache clear` delete them, and a prefix
holding a glob character matched other keys instead of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import yaml
from click.testing import CliRunner

from tests.budgets.conftest import STORE_TIMEOUT_S
from tests.cache.helpers import cached_config, oai_call
from tests.gateway.conftest import oai
from tests.harness import needs_redis, own_keys

REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
def base() -> Iterator[str]:
    yield from own_keys(REDIS_URL, "tw-test-prefix-", "")


def cli(cfg: dict, tmp_path, *args: str) -> str:
    from tierwise.commands.cache import command

    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(command, [*args, "-c", str(path)])
    assert r.exit_code == 0, r.output
    return r.output


@needs_redis
def test_clearing_a_cache_that_shares_its_prefix_leaves_the_budgets_counters(tmp_path, gateway, openai_up,
                                                                             anthropic_up, base):
    prefix = base + ":"
    cfg = cached_config(openai_up.url, anthropic_up.url, cache={"backend": "redis", "redis_url": REDIS_URL,
                                                                 "redis_prefix": prefix, "redis_timeout": STORE_TIMEOUT_S},
                        budgets={"store": {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix + "spend:", "timeout": STORE_TIMEOUT_S},
                                 "limits": [{"name": "day", "usd": 100, "per": "key"}]})
    g = gateway(cfg)
    oai_call(oai(g), model="main", max_tokens=5)  # a frontier call: a budget counter and a cache entry
    oai_call(oai(g))
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    spend = [k for k in r.scan_iter(match=prefix + "spend:b:*") if r.type(k) == "hash"]
    assert spend
    assert "entries: 2" in cli(cfg, tmp_path, "stats")
    assert "dropped 2 entries" in cli(cfg, tmp_path, "clear")
    assert all(r.exists(k) for k in spend)  # the budget's spend is still counted
    assert oai_call(oai(g))[1] == "miss"
    r.close()


@needs_redis
def test_a_prefix_with_glob_characters_is_taken_literally(tmp_path, gateway, openai_up, anthropic_up, base):
    cfg = cached_config(openai_up.url, anthropic_up.url, cache={"backend": "redis", "redis_url": REDIS_URL,
                                                                 "redis_prefix": base + "[eu]*:",
                                                                 "redis_timeout": STORE_TIMEOUT_S})
    g = gateway(cfg)
    oai_call(oai(g))
    assert oai_call(oai(g))[1] == "hit"
    other = redis.Redis.from_url(REDIS_URL)
    other.set(base + "e-other:x:y", b"not the cache's")  # matched by the prefix read as a glob
    assert "entries: 1" in cli(cfg, tmp_path, "stats")
    assert "dropped 1 entry" in cli(cfg, tmp_path, "invalidate", "--route", "loc")
    assert other.get(base + "e-other:x:y") == b"not the cache's"
    assert oai_call(oai(g))[1] == "miss"
    other.close()
