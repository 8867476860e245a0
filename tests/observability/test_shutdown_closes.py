"""A gateway's shutdown closes what it opened for `/metrics` and the dashboard: the workers' presence reader's Redis
connection. Left open, the garbage collector found it after the gateway's loop had closed ("unclosed Connection",
"unclosed <socket.socket ... raddr=(..., 6379)>"), in whatever test ran then (found by `-p tests.leaks`)."""

from __future__ import annotations

import gc
import warnings

from tests.budgets.conftest import REDIS_URL, redis_prefix  # noqa: F401 (the fixture)
from tests.harness import GatewayServer, make_config, needs_redis, two_tier_config
from tests.observability.conftest import scrape


@needs_redis
def test_a_stopped_gateway_leaves_no_presence_connection_open(
    openai_up,
    anthropic_up,
    redis_prefix,  # noqa: F811
    tmp_path,
):
    cfg = two_tier_config(
        openai_up.url,
        anthropic_up.url,
        dispatch={"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme"},
        observability={"metrics": {"enabled": True}, "dashboard": {"presence_redis_url": REDIS_URL}},
    )
    gc.collect()  # other tests' garbage is not this test's to judge
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        scrape(g.url)  # reads the workers' presence (the tierwise_workers_present gauge): a Redis connection
    finally:
        g.stop()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        del g
        gc.collect()
    left = [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]
    assert not left, left
