"""Part 6 with dispatch: `tierwise serve --workers 2` (two gateway processes on one port), a
capability route served by a `tierwise worker` process. Each gateway process dispatches with its
own result stream; every request is answered once, by the worker, and has its one ledger row
(carrying the worker's model and locality) and is counted once in the shared metrics."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import redis

from tests.dispatch.conftest import REDIS_URL, echo, worker_config
from tests.harness import two_tier_config
from tests.observability.conftest import scrape, serve_processes, total
from tierwise.dispatch.keys import Keyspace

N = 30


def test_two_gateway_processes_dispatch_to_a_worker(tmp_path, openai_up, anthropic_up, redis_prefix,
                                                    worker_processes):
    openai_up.default = echo(0.05)
    w = worker_processes(worker_config(openai_up.url, redis_prefix, worker_id="gpu-1", capacity=8), "gpu-1")
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {"capability": "classify"}},
                          dispatch={"redis_url": REDIS_URL, "prefix": redis_prefix, "tenant": "acme", "timeout": 20},
                          observability={"metrics": {"enabled": True}})
    w.wait_ready()
    proc, url = serve_processes(tmp_path, cfg)
    keys = Keyspace(redis_prefix, "acme")
    r = redis.Redis.from_url(REDIS_URL)
    try:
        def one(i: int) -> str:
            with httpx.Client(timeout=20) as c:  # a new connection each time: either process may take it
                resp = c.post(url + "/v1/chat/completions",
                              json={"model": "main", "messages": [{"role": "user", "content": f"q{i}"}]})
                assert resp.status_code == 200, resp.text
                return str(resp.json()["choices"][0]["message"]["content"])

        sent = 0
        for _ in range(5):  # until both processes have dispatched (the kernel picks which one accepts)
            with ThreadPoolExecutor(10) as pool:
                assert list(pool.map(one, range(sent, sent + N))) == [f"echo:q{i}" for i in range(sent, sent + N)]
            sent += N
            callers = list(r.scan_iter(match=keys.results("*", "any", "classify"), count=1000))
            if len(callers) == 2:
                break
        assert len(callers) == 2  # each gateway process waits on its own result stream
        deadline = time.monotonic() + 30
        while total(scrape(url), "tierwise_requests_total") != sent:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=40)[0].decode()
        r.close()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    from tierwise.ledger.store import Ledger

    ledger = Ledger.open(str(tmp_path / "ledger.db"))
    try:
        rows = ledger.query()
        assert len(rows) == sent and len({x.request_id for x in rows}) == sent
        assert {(x.route, x.locality, x.model, x.status) for x in rows} == {("main", "local", "small-model", 200)}
    finally:
        ledger.close()
    assert len(openai_up.requests) == sent  # each request ran once on the worker
