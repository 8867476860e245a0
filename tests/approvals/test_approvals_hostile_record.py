"""A record in the approvals' Redis that this gateway did not write (not JSON, a JSON list, a record whose `created`
is a word) is left out of the pending list; the real ones are listed.

Before (session 32, obs4): one such record made `GET /v1/tierwise/approvals` a 503 "approval store unavailable
(JSONDecodeError)" (AttributeError, TypeError) for every approver, so no waiting request could be decided from the list.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.harness import own_keys, two_tier_config

from .conftest import ADMIN, admin_get, approvals_config, wait_pending

URL = "redis://127.0.0.1:6379/9"  # (databases 0-6 are other work's)


@pytest.fixture
def prefix() -> Iterator[str]:
    yield from own_keys(URL, "tw-test-approvals-hostile:")


@pytest.mark.parametrize("planted", [b"not json", b"[1, 2]", b'{"id": "x", "kind": "route", "subject": "main", '
                                     b'"created": "yesterday", "deadline": 1e12, "state": "pending"}'],
                         ids=["word", "list", "shape"])
def test_a_planted_record_is_left_out_of_the_pending_list(gateway, openai_up, anthropic_up, prefix, planted,
                                                          monkeypatch):
    import threading

    from tests.gateway.conftest import oai

    monkeypatch.setenv("TW_ADMIN", ADMIN)
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          server={"default_route": "main", "admin_keys_env": ["TW_ADMIN"]},
                          approvals={"store": {"backend": "redis", "redis_url": URL, "key_prefix": prefix},
                                     **approvals_config()})
    g = gateway(cfg)
    t = threading.Thread(target=lambda: _ask(oai(g, timeout=5)), daemon=True)
    t.start()
    real = wait_pending(g.url)
    assert len(real) == 1
    r = redis.Redis.from_url(URL)
    try:
        rid = "planted-" + uuid.uuid4().hex[:6]
        r.zadd(prefix + "pending", {rid: time.time() + 600})
        assert r.exists(prefix + "rec:" + real[0]["id"])  # where this version keeps a record
        r.set(prefix + "rec:" + rid, planted, ex=600)
    finally:
        r.close()
    resp = admin_get(g.url)
    assert resp.status_code == 200, resp.text
    assert [p["id"] for p in resp.json()["pending"]] == [real[0]["id"]]
    t.join(10)


def _ask(client) -> None:
    try:
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": "deploy"}])
    except Exception:
        pass
