"""`cache.redis_signing_key_env`: Redis answer-cache entries carry an HMAC-SHA256 of their key and value under a
secret the gateways share, and an entry that does not verify is a miss (session 32, review32a).

Before: whoever can write under the cache's prefix (another deployment on the same Redis without an ACL user of its
own) could store any answer for any question in any tenant's scope, and every gateway served it as the cached answer
(obs4 documented it as left open).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.budgets.conftest import STORE_TIMEOUT_S
from tests.cache.helpers import cached_config, oai_call
from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.harness import drop_redis_keys

REDIS_URL = "redis://127.0.0.1:6379/9"  # (databases 0-6 are other work's)
ANSWER = "HONESTANSWERTEXT"


@pytest.fixture
def prefix() -> Iterator[str]:
    p = f"tw-test-signed-{uuid.uuid4().hex[:8]}:"
    yield p
    drop_redis_keys(REDIS_URL, p)


def cache_cfg(prefix: str, **more: object) -> dict[str, object]:
    return {"backend": "redis", "redis_url": REDIS_URL, "redis_prefix": prefix, "redis_timeout": STORE_TIMEOUT_S,
            **more}


def test_a_planted_answer_is_a_miss_under_a_signing_key(gateway, openai_up, anthropic_up, prefix, monkeypatch):
    monkeypatch.setenv("TW_CACHE_SECRET", "s3cret-s3cret-s3cret")
    openai_up.default = Reply(text=ANSWER)
    g = gateway(cached_config(openai_up.url, anthropic_up.url,
                              cache=cache_cfg(prefix, redis_signing_key_env="TW_CACHE_SECRET")))
    c = oai(g)
    assert oai_call(c)[1] == "miss"
    answer, cache = oai_call(c)
    assert cache == "hit" and answer.choices[0].message.content == ANSWER  # an honest entry verifies
    r = redis.Redis.from_url(REDIS_URL)
    try:
        entries = [k for k in r.scan_iter(match=prefix + "*") if r.type(k) == b"string" and
                   ANSWER.encode() in (r.get(k) or b"")]
        assert len(entries) == 1
        r.set(entries[0], r.get(entries[0]).replace(ANSWER.encode(), b"PLANTEDANSWERTXT"),  # type: ignore[union-attr]
              keepttl=True)
        seen = len(openai_up.requests)
        answer, cache = oai_call(c)
        assert cache == "miss" and answer.choices[0].message.content == ANSWER
        assert len(openai_up.requests) == seen + 1
        answer, cache = oai_call(c)  # the miss's answer took its place
        assert cache == "hit" and answer.choices[0].message.content == ANSWER
    finally:
        r.close()


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
