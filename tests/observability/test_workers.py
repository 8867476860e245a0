"""`tierwise serve --workers 2`: requests spread over two processes, and /metrics adds them up
whichever worker answers the scrape; the private metrics directory goes away at the end."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx

from tests.doubles import Delay, Reply
from tests.harness import two_tier_config
from tests.observability.conftest import MSG, scrape, serve_processes, total

N = 40


def test_two_workers_counts_add_up(tmp_path, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, anthropic_up.url, observability={"metrics": {"enabled": True}})
    anthropic_up.default = Delay(0.2, then=Reply(text="hi", usage=(3, 1)))
    proc, url = serve_processes(tmp_path, cfg)
    private_tmp = tmp_path / "tmp"
    try:
        def one(_: int) -> int:
            # a new connection each time, so the kernel hands them to either worker
            with httpx.Client(timeout=10) as c:
                return c.post(url + "/v1/chat/completions", json={"model": "main", "messages": MSG}).status_code

        assert len(metrics_dirs(private_tmp)) == 1  # the workers share one private metrics directory
        sent = 0
        per_worker: list[float] = []
        for _ in range(5):  # until both processes have served some (the kernel picks; it nearly always splits)
            with ThreadPoolExecutor(16) as pool:
                assert list(pool.map(one, range(N))) == [200] * N
            sent += N
            # each worker moves its counts into the shared files within a second
            deadline = time.monotonic() + 30
            while total(scrape(url), "tierwise_requests_total") != sent:
                assert time.monotonic() < deadline, scrape(url)
                time.sleep(0.2)
            for _ in range(6):  # each scrape lands on either worker: every one sees the sum
                m = scrape(url)
                assert total(m, "tierwise_requests_total") == sent
                assert total(m, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 3 * sent
            per_worker = [v for (name, _), v in m.items() if name == "tierwise_worker_requests"]
            assert len(per_worker) == 2 and sum(per_worker) == sent
            if all(v > 0 for v in per_worker):
                break
        assert all(v > 0 for v in per_worker), per_worker  # both processes served
    finally:
        proc.terminate()
        out = proc.communicate(timeout=40)[0].decode()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert metrics_dirs(private_tmp) == set()  # the private metrics directory is gone
    # both processes wrote the one ledger: every request has its row, none twice
    from tierwise.ledger.store import Ledger

    ledger = Ledger.open(str(tmp_path / "ledger.db"))
    try:
        rows = ledger.query()
        assert len(rows) == sent and len({r.request_id for r in rows}) == sent
    finally:
        ledger.close()


def metrics_dirs(tmp: Path) -> set[str]:
    return {d for d in os.listdir(tmp) if d.startswith("tierwise-metrics-")}
