"""A named worker killed and started again puts its presence entry back in place, not a second one (session 38, dist9).

A worker's entry in the presence indexes is `<id>#<secret>` (a guessed id cannot be aimed at, session 37): with a
random secret per process, each worker killed (kill -9, an OOM, a lost machine) left its entries behind, in the
capability's index and, since session 38, in one per caller it reads. Only an unnamed caller's publish prunes them
(a named caller's or a worker's rules may not: ZREMRANGEBYSCORE lets one user empty an index), so under named
callers they were never removed. A named worker's secret is now derived from its Redis password and its id: the
same worker, started again, renews the same entries; another user cannot work it out. ACL users are made on the
shared Redis and deleted after."""

from __future__ import annotations

import redis

from tests.dispatch.conftest import REDIS_URL, echo, printed_rules, worker_config
from tests.dispatch.test_tenancy_acl import acl_users  # noqa: F401 (the same fixture)
from tierwise.dispatch.keys import Keyspace


def test_a_named_worker_started_again_reuses_its_presence_entries(
        acl_users, openai_up, redis_prefix, worker_processes, tmp_path):  # noqa: F811
    openai_up.default = echo()
    keys = Keyspace(redis_prefix, "acme")
    data = worker_config(openai_up.url, redis_prefix, worker_id="gpu-1", locality="remote",
                         provider_locality="remote", callers=["app-a", "app-b"])
    data["dispatch"]["redis_url"] = acl_users(printed_rules(data, tmp_path, "gpu-1.yaml"))
    first = worker_processes(data, "first")
    first.wait_ready()
    first.kill9()
    again = worker_processes(data, "again")
    again.wait_ready()
    admin = redis.Redis.from_url(REDIS_URL)
    try:
        sizes = {k: admin.zcard(k) for k in (keys.index("any", "classify"), keys.listing("any", "classify", "app-a"),
                                             keys.listing_told("any", "classify"))}
    finally:
        admin.close()
    assert set(sizes.values()) == {1}, sizes
