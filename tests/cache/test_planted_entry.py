"""An answer-cache entry on Redis larger than `cache.max_entry_bytes` is never read: whoever can write under the
cache's prefix (another deployment on the same Redis without an ACL user of its own) planted one and every
gateway read it whole into memory at each lookup of its key, decoded it on the event loop and relayed it.

Before (session 32, obs4): an 8 MB entry planted under a 64 KiB `max_entry_bytes` was served to the client as the
cached answer (8,000,007 characters, the upstream not asked); up to Redis's `proto-max-bulk-len` (512 MB) per
lookup, each concurrent lookup its own copy. Now a lookup answers a miss for it without reading it, and the miss's
answer takes its place.
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
    p = f"tw-test-planted-{uuid.uuid4().hex[:8]}:"
    yield p
    drop_redis_keys(REDIS_URL, p)


def test_an_entry_above_max_entry_bytes_is_a_miss(gateway, openai_up, anthropic_up, prefix):
    openai_up.default = Reply(text=ANSWER)
    g = gateway(cached_config(openai_up.url, anthropic_up.url, cache={
        "backend": "redis", "redis_url": REDIS_URL, "redis_prefix": prefix, "redis_timeout": STORE_TIMEOUT_S,
        "max_entry_bytes": 65536}))
    c = oai(g)
    assert oai_call(c)[1] == "miss"
    assert oai_call(c)[1] == "hit"
    r = redis.Redis.from_url(REDIS_URL)
    try:
        entries = [k for k in r.scan_iter(match=prefix + "*") if r.type(k) == b"string" and
                   ANSWER.encode() in (r.get(k) or b"")]
        assert len(entries) == 1
        planted = r.get(entries[0]).replace(ANSWER.encode(), b"PLANTED" + b"x" * 8_000_000)  # type: ignore[union-attr]
        r.set(entries[0], planted, keepttl=True)
        seen = len(openai_up.requests)
        answer, cache = oai_call(c)
        assert cache == "miss" and answer.choices[0].message.content == ANSWER
        assert len(openai_up.requests) == seen + 1
        assert len(r.get(entries[0]) or b"") < 65536  # the miss's answer took its place
    finally:
        r.close()
