"""One worker cannot make another look gone (session 37, dist8).

- The presence index named each worker's entry by its id, and every worker of a capability may ZADD into the index
  (Redis cannot limit ZADD's members): a worker that knew or guessed another's id scored its entry 0, and with its
  own too every caller got NoWorker while a worker was there. Entries now carry a secret of their process.
- A worker without `dispatch.worker.id` got `presence:<tenant>:*` in its printed rules: it could overwrite or delete
  every worker's presence record (the dashboard's and `--list`'s view). Its rules now name the records of workers
  of its own locality and capabilities (`<tag>-<host>-<pid>`), which is what such a worker's id now is.
ACL users are made on the shared Redis and deleted after."""

from __future__ import annotations

import pytest
import redis.asyncio as aredis

from tests.dispatch.conftest import REDIS_URL, echo, printed_rules, running_worker, worker_config
from tests.dispatch.shared_key_attempts import let_through
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.keys import Keyspace


@pytest.mark.asyncio
async def test_a_worker_cannot_mark_another_expired_in_the_presence_index(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    index = keys.index("any", "classify")
    honest = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                           visibility_timeout=30.0)
    honest["dispatch"]["worker"].update(heartbeat=5.0, presence_ttl=15.0)  # no renewal during the test
    honest["dispatch"]["redis_url"] = acl_users(printed_rules(honest, tmp_path, "w1.yaml"))
    other = worker_config(openai_up.url, redis_prefix, worker_id="w2", locality="remote", provider_locality="remote")
    hostile = aredis.from_url(acl_users(printed_rules(other, tmp_path, "w2.yaml")))
    try:
        async with running_worker(honest, tmp_path / "w"), Dispatcher(REDIS_URL, tenant="acme",
                                                                      prefix=redis_prefix) as d:
            assert (await d.dispatch("classify", "before", timeout=20)).text == "echo:before"
            for guess in ("w1", "w2"):  # its guess of the other's id, and its own (its usual withdrawal)
                await hostile.zadd(index, {guess: 0})
                await hostile.zadd(index, {guess: 0}, xx=True)
            assert (await d.dispatch("classify", "after", timeout=20)).text == "echo:after"
    finally:
        await hostile.aclose()


@pytest.mark.asyncio
async def test_a_worker_without_an_id_cannot_touch_other_workers_presence_records(
        acl_users, openai_up, redis_prefix, tmp_path):  # noqa: F811
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    admin = aredis.from_url(REDIS_URL)
    named = worker_config(openai_up.url, redis_prefix, worker_id="gpu-1", locality="remote",
                          provider_locality="remote")
    unnamed = worker_config(openai_up.url, redis_prefix, worker_id="x", locality="remote", provider_locality="remote")
    del unnamed["dispatch"]["worker"]["id"]
    url = acl_users(printed_rules(unnamed, tmp_path, "unnamed.yaml"))
    hostile = aredis.from_url(url)
    unnamed["dispatch"]["redis_url"] = url
    try:
        async with running_worker(named, tmp_path / "n"), running_worker(unnamed, tmp_path / "u") as w:
            victim = keys.presence("gpu-1")
            assert await admin.exists(victim) and await admin.exists(keys.presence(w.id))  # each wrote its own
            assert await let_through({"DEL": lambda: hostile.delete(victim), "SET": lambda: hostile.set(victim, "{}"),
                                      "plant": lambda: hostile.set(keys.presence("gpu-2"), '{"id": "gpu-2"}')}) == []
            async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix) as d:
                assert (await d.dispatch("classify", "hi", timeout=20)).text == "echo:hi"
    finally:
        await hostile.aclose()
        await admin.aclose()
