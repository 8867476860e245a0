"""A `tierwise worker` with the blackboard on publishes the backlog of its capabilities' queues as
its model's queue depth, so a gateway replica reading the same board sees tasks piling up."""

from __future__ import annotations

import asyncio
import threading
import time

from tests.dispatch.conftest import REDIS_URL, echo, running_worker, worker_config
from tests.doubles import Gate
from tierwise.dispatch.blackboard import Blackboard
from tierwise.dispatch.blackboard_settings import BlackboardConfig
from tierwise.dispatch.client import Dispatcher


async def test_a_worker_publishes_its_queue_depth(openai_up, redis_prefix, tmp_path):
    # The worker's one slot is held upstream until the board showed the backlog: with a 0.5 s answer a loaded
    # machine (this loop stalled, the double not) served the tasks about as fast as they were queued, and the
    # depth never reached 3. The board's Redis calls may take 30 s (0.5 by default: a stalled loop ran it out,
    # "Timed out closing connection").
    held = threading.Event()
    openai_up.default = Gate(held, then=echo())
    board_cfg = {"enabled": True, "key_prefix": redis_prefix + "board:", "publish_interval_ms": 50, "timeout": 30}
    data = worker_config(openai_up.url, redis_prefix, worker_id="gpu-1", capacity=1)
    data["blackboard"] = board_cfg
    reader = Blackboard(BlackboardConfig(**board_cfg, replica_id="gateway-1"), {}, REDIS_URL,
                        tenant="acme")  # the view of a gateway of the worker's tenant
    await reader.start()
    seen: list[float] = []
    try:
        async with running_worker(data, tmp_path / "w"), \
                Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, timeout=120) as d:
            tasks = [asyncio.create_task(d.dispatch("classify", f"task {i}")) for i in range(6)]
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not (seen and max(seen) >= 3):
                    await asyncio.sleep(0.05)
                    seen.append(reader.value("small", "queue_depth") or 0.0)
            finally:
                held.set()
            results = await asyncio.gather(*tasks)
            assert sorted(r.text for r in results) == sorted(f"echo:task {i}" for i in range(6))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and reader.value("small", "queue_depth"):
                await asyncio.sleep(0.05)
            assert reader.value("small", "queue_depth") == 0  # the queue drained, and the board says so
    finally:
        await reader.close()
    assert max(seen) >= 3, seen  # at least three of the six were waiting while the first ran
