"""The answer cache's Redis (a redis-server of the test's own) stopped and back: `/health` names it, the log says
it once an outage, `/metrics` has it, and requests are answered throughout (uncached).

Before (session 24's team-ops left it): an outage was only misses, as a cold cache is; `/health` said `ok`; the log
had a warning per failed lookup and per failed store (two a request)."""

from __future__ import annotations

import logging
from typing import Any

import httpx2 as httpx

from tests.cache.helpers import cached_config, oai_call
from tests.gateway.conftest import oai


def cache_gateway(gateway: Any, openai_up: Any, anthropic_up: Any, url: str) -> Any:
    return gateway(cached_config(openai_up.url, anthropic_up.url, observability={"metrics": {"enabled": True}},
                                 cache={"backend": "redis", "redis_url": url, "redis_timeout": 0.3}))


def health(g: Any) -> dict[str, Any]:
    return dict(httpx.get(g.url + "/health", timeout=10).json())


def metric(g: Any, name: str) -> float:
    text = httpx.get(g.url + "/metrics", timeout=10).text
    return float(next(ln.split(" ")[1] for ln in text.splitlines() if ln.startswith(name + " ")))


def test_a_stopped_cache_store_is_in_health_metrics_and_logged_once(own_redis, gateway, openai_up, anthropic_up,
                                                                     caplog):
    r = own_redis()
    g = cache_gateway(gateway, openai_up, anthropic_up, r.url)
    assert oai_call(oai(g))[1] == "miss"
    assert oai_call(oai(g))[1] == "hit"
    h = health(g)
    assert h["status"] == "ok" and h["answer_cache"] == {"status": "ok"}, h
    assert metric(g, "tierwise_cache_store_up") == 1.0
    r.stop()
    caplog.set_level(logging.WARNING, logger="tierwise.cache")
    for _ in range(5):
        answer, seen = oai_call(oai(g))  # answered, uncached: a cache outage fails no request
        assert answer.choices[0].message.content == "ok" and seen == "miss"
    h = health(g)
    assert h["answer_cache"]["status"] == "unavailable" and h["answer_cache"]["error"], h
    assert "on_store_error" not in h["answer_cache"]
    assert h["routes"]["loc"] == {"status": "degraded", "answer_cache": "unavailable"}, h
    assert h["status"] == "degraded"
    said = lambda: [x.getMessage() for x in caplog.records if x.name == "tierwise.cache"]  # noqa: E731
    assert len(said()) == 1 and "unavailable" in said()[0], said()  # once, not twice a request
    assert metric(g, "tierwise_cache_store_up") == 0.0
    assert metric(g, "tierwise_cache_store_errors_total") >= 10  # a lookup and a store each
    r.start()  # the same port: the cache works again without a restart
    assert oai_call(oai(g))[1] in ("hit", "miss")
    assert oai_call(oai(g))[1] == "hit"
    h = health(g)
    assert h["status"] == "ok" and h["answer_cache"] == {"status": "ok"}, h
    assert len(said()) == 2 and "answers again" in said()[1] and "10 lookup(s) and store(s) failed" in said()[1], said()
    assert metric(g, "tierwise_cache_store_up") == 1.0


def test_health_and_metrics_probe_the_cache_store_without_traffic(own_redis, gateway, openai_up, anthropic_up,
                                                                  monkeypatch):
    monkeypatch.setattr("tierwise.budgets.store_health.FRESH_S", 0.0)  # every read probes (10 s of silence in production)
    r = own_redis()
    g = cache_gateway(gateway, openai_up, anthropic_up, r.url)
    assert health(g)["answer_cache"] == {"status": "ok"}
    r.stop()
    assert health(g)["answer_cache"]["status"] == "unavailable"  # no request met it: the probe did
    r.start()
    assert metric(g, "tierwise_cache_store_up") == 1.0  # a scrape probes as well
    assert health(g)["answer_cache"] == {"status": "ok"}


def test_the_memory_cache_has_no_store_to_report(gateway, openai_up, anthropic_up):
    g = gateway(cached_config(openai_up.url, anthropic_up.url))
    assert "answer_cache" not in health(g)


def test_a_locked_sqlite_cache_is_probed_and_seen_in_health(
        gateway, openai_up, anthropic_up, monkeypatch, tmp_path):
    """Session 26: the sqlite file was never probed (`/health` said ok while another process held it locked, until
    a request met it, and its end was never seen without one), and each lookup and store of a request waited
    sqlite's 5 s for the lock."""
    import sqlite3

    monkeypatch.setattr("tierwise.budgets.store_health.FRESH_S", 0.0)  # every read probes (10 s of silence in production)
    path = tmp_path / "answers.db"
    g = gateway(cached_config(openai_up.url, anthropic_up.url, observability={"metrics": {"enabled": True}},
                              cache={"backend": "sqlite", "sqlite_path": str(path)}))
    assert oai_call(oai(g))[1] == "miss"
    assert oai_call(oai(g))[1] == "hit"
    assert health(g)["answer_cache"] == {"status": "ok"}
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer holding the file
    other.execute("BEGIN IMMEDIATE")
    try:
        h = health(g)  # no request met it: the probe did
        assert h["answer_cache"]["status"] == "unavailable" and h["answer_cache"]["error"] == "OperationalError", h
        assert h["routes"]["loc"] == {"status": "degraded", "answer_cache": "unavailable"}, h
        assert metric(g, "tierwise_cache_store_up") == 0.0
        answer, _ = oai_call(oai(g), messages=[{"role": "user", "content": "a new question"}])
        assert answer.choices[0].message.content == "ok"  # answered, uncached
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert health(g)["answer_cache"] == {"status": "ok"}  # its end seen without traffic


def test_a_sqlite_cache_file_that_is_not_a_database_is_a_config_error_at_start(tmp_path):
    import pytest

    from tierwise.cache.answer_cache import make_backend
    from tierwise.cache.settings import CacheConfig
    from tierwise.errors import ConfigError

    (tmp_path / "c.db").write_bytes(b"garbage " * 200)
    with pytest.raises(ConfigError) as e:
        make_backend(CacheConfig(enabled=True, backend="sqlite", sqlite_path="c.db"), str(tmp_path))
    assert "cannot open the answer cache at" in e.value.message and "cache.sqlite_path" in e.value.message


def test_the_sqlite_cache_waits_for_another_process_lock_briefly_not_five_seconds(tmp_path):
    """A lookup and a store that meet a file locked by another process each waited sqlite's 5 s (measured: 5.0 s
    each, bench/RESULTS.md session 26): the request-path connection's busy timeout is BUSY_S."""
    from tierwise.cache.backends import BUSY_S, SqliteBackend

    b = SqliteBackend(str(tmp_path / "c.db"), 1 << 20)
    assert b.store.db.execute("PRAGMA busy_timeout").fetchone()[0] == int(BUSY_S * 1000) < 5000


def test_health_waits_for_a_probe_slowed_past_the_store_timeout(gateway, openai_up, anthropic_up, monkeypatch,
                                                                 tmp_path):
    """Session 31: `/health` waited for its probe 0.1 s past the store's timeout; a sqlite probe meeting a locked
    file gives up after its busy timeout (0.5 s), and on a loaded machine (load 12-20 on 2 cores) it ended after
    `/health` had answered `ok`. The second of sleep stands for that machine: the probe's own end decides."""
    import sqlite3
    import time

    from tierwise.cache.backends import SqliteStore

    monkeypatch.setattr("tierwise.budgets.store_health.FRESH_S", 0.0)
    real_probe = SqliteStore.probe

    def slowed_probe(self: SqliteStore) -> None:
        time.sleep(1.0)  # (on the backend's worker thread, as a starved one would be)
        real_probe(self)

    monkeypatch.setattr(SqliteStore, "probe", slowed_probe)
    path = tmp_path / "answers.db"
    g = gateway(cached_config(openai_up.url, anthropic_up.url, cache={"backend": "sqlite", "sqlite_path": str(path)}))
    assert health(g)["answer_cache"] == {"status": "ok"}
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        h = health(g)
        assert h["answer_cache"]["status"] == "unavailable" and h["answer_cache"]["error"] == "OperationalError", h
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert health(g)["answer_cache"] == {"status": "ok"}
