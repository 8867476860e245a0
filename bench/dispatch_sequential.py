"""Sequential dispatch latency: one task at a time to one in-process worker on the shared Redis (127.0.0.1:6379,
keys under a prefix of its own, deleted after), an OpenAI double answering at once; median and p90 of 300 after
30 warm-up. Run from the repository root (or with another checkout's `src` first on the path, to compare):

    PYTHONPATH=src:. python bench/dispatch_sequential.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from tests.dispatch.conftest import REDIS_URL, running_worker, worker_config
from tests.doubles import OpenAIDouble, Reply
from tests.harness import drop_redis_keys
from tierwise.dispatch.client import Dispatcher


async def main() -> None:
    up = OpenAIDouble()
    up.start()
    up.default = Reply(text="ok")
    prefix = f"tierwise-bench:{uuid.uuid4().hex[:8]}:"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with running_worker(worker_config(up.url, prefix, worker_id="b1"), Path(tmp)), \
                    Dispatcher(REDIS_URL, tenant="acme", prefix=prefix) as d:
                for _ in range(30):
                    await d.dispatch("classify", "x")
                lat = []
                for _ in range(300):
                    t0 = time.perf_counter()
                    await d.dispatch("classify", "x")
                    lat.append(time.perf_counter() - t0)
                print(f"median {statistics.median(lat) * 1000:.2f} ms, p90 {sorted(lat)[269] * 1000:.2f} ms")
    finally:
        up.stop()
        drop_redis_keys(REDIS_URL, prefix)


if __name__ == "__main__":
    asyncio.run(main())
