"""Answer-cache entries planted on Redis by whoever can write under the cache's prefix (another deployment on the
same Redis without an ACL user of its own).

- An entry larger than `cache.max_entry_bytes` is never read (session 32, obs4). Before: an 8 MB entry planted
  under a 64 KiB `max_entry_bytes` was served to the client as the cached answer (8,000,007 characters, the
  upstream not asked); up to Redis's `proto-max-bulk-len` (512 MB) read per lookup, each concurrent lookup its own
  copy. Now a lookup answers a miss for it without reading it, and the miss's answer takes its place.
- `cache.redis_signing_key_env`: entries carry an HMAC-SHA256 of their key and value under a secret the gateways
  share, and an entry that does not verify is a miss (session 32, review32a). Before: any answer could be stored for
  any question in any tenant's scope, and every gateway served it as the cached answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from tests.budgets.conftest import STORE_TIMEOUT_S
from tests.cache.helpers import cached_config, oai_call
from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.harness import own_keys

REDIS_URL = "redis://127.0.0.1:6379/9"  # (databases 0-6 are other work's)
ANSWER = "HONESTANSWERTEXT"


@pytest.fixture
def prefix() -> Iterator[str]:
    yield from own_keys(REDIS_URL, "tw-test-planted-")


def cache_cfg(prefix: str, **more: object) -> dict[str, object]:
    return {"backend": "redis", "redis_url": REDIS_URL, "redis_prefix": prefix, "redis_timeout": STORE_TIMEOUT_S,
            **more}


def plant_then_ask(c, openai_up, prefix: str, plant: Callable[[bytes], bytes]) -> bytes:
    """Replace the one cached entry's bytes by `plant(bytes)` (TTL kept), ask again: a miss, the upstream asked, the
    honest answer served. Returns the entry's key."""
    with redis.Redis.from_url(REDIS_URL) as r:
        entries = [k for k in r.scan_iter(match=prefix + "*") if r.type(k) == b"string" and
                   ANSWER.encode() in (r.get(k) or b"")]
        assert len(entries) == 1
        r.set(entries[0], plant(r.get(entries[0]) or b""), keepttl=True)
    seen = len(openai_up.requests)
    answer, cache = oai_call(c)
    assert cache == "miss" and answer.choices[0].message.content == ANSWER
    assert len(openai_up.requests) == seen + 1
    return entries[0]


def test_an_entry_above_max_entry_bytes_is_a_miss(gateway, openai_up, anthropic_up, prefix):
    openai_up.default = Reply(text=ANSWER)
    g = gateway(cached_config(openai_up.url, anthropic_up.url, cache=cache_cfg(prefix, max_entry_bytes=65536)))
    c = oai(g)
    assert oai_call(c)[1] == "miss"
    assert oai_call(c)[1] == "hit"
    key = plant_then_ask(c, openai_up, prefix, lambda v: v.replace(ANSWER.encode(), b"PLANTED" + b"x" * 8_000_000))
    with redis.Redis.from_url(REDIS_URL) as r:
        assert len(r.get(key) or b"") < 65536  # the miss's answer took its place


def test_a_planted_answer_is_a_miss_under_a_signing_key(gateway, openai_up, anthropic_up, prefix, monkeypatch):
    monkeypatch.setenv("TW_CACHE_SECRET", "s3cret-s3cret-s3cret")
    openai_up.default = Reply(text=ANSWER)
    g = gateway(cached_config(openai_up.url, anthropic_up.url,
                              cache=cache_cfg(prefix, redis_signing_key_env="TW_CACHE_SECRET")))
    c = oai(g)
    assert oai_call(c)[1] == "miss"
    answer, cache = oai_call(c)
    assert cache == "hit" and answer.choices[0].message.content == ANSWER  # an honest entry verifies
    plant_then_ask(c, openai_up, prefix, lambda v: v.replace(ANSWER.encode(), b"PLANTEDANSWERTXT"))
    answer, cache = oai_call(c)  # the miss's answer took its place
    assert cache == "hit" and answer.choices[0].message.content == ANSWER


def test_a_signing_key_env_that_is_not_set_is_a_config_error(monkeypatch, tmp_path):
    from tierwise.cache.answer_cache import make_backend
    from tierwise.cache.settings import CacheConfig
    from tierwise.errors import ConfigError

    monkeypatch.delenv("TW_CACHE_SECRET_UNSET", raising=False)
    with pytest.raises(ConfigError, match="TW_CACHE_SECRET_UNSET"):
        make_backend(CacheConfig(**cache_cfg("p:", redis_signing_key_env="TW_CACHE_SECRET_UNSET")), str(tmp_path))
    monkeypatch.setenv("TW_CACHE_SECRET_UNSET", "short")
    with pytest.raises(ConfigError, match="fewer than 16"):
        make_backend(CacheConfig(**cache_cfg("p:", redis_signing_key_env="TW_CACHE_SECRET_UNSET")), str(tmp_path))
