"""The job the dispatch benchmark gives Celery and taskiq (bench/dispatch.py): one chat completion
from the fixed-latency stub, the same call a tierwise worker makes for its capability.

Configured from the environment the benchmark sets: BENCH_REDIS_URL, BENCH_STUB_URL, BENCH_QUEUE.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from celery import Celery
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
STUB_URL = os.environ.get("BENCH_STUB_URL", "http://127.0.0.1:9100")
QUEUE = os.environ.get("BENCH_QUEUE", "bench-dispatch")


def _body(prompt: str) -> bytes:
    return json.dumps({"model": "stub", "messages": [{"role": "user", "content": prompt}]}).encode()


# ---------------------------------------------------------------------------- Celery (Redis broker and backend)

celery_app = Celery("bench_dispatch", broker=REDIS_URL, backend=REDIS_URL)
celery_app.conf.update(task_default_queue=QUEUE, task_serializer="json", result_serializer="json",
                       accept_content=["json"], worker_prefetch_multiplier=1, task_acks_late=True,
                       result_expires=600, broker_connection_retry_on_startup=True)


@celery_app.task(name="bench.call_stub")
def call_stub(prompt: str) -> str:
    req = urllib.request.Request(STUB_URL + "/v1/chat/completions", data=_body(prompt),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(json.loads(resp.read())["choices"][0]["message"]["content"])


# ---------------------------------------------------------------------------- taskiq (Redis stream broker)

taskiq_broker = RedisStreamBroker(REDIS_URL, queue_name=QUEUE + "-taskiq").with_result_backend(
    RedisAsyncResultBackend(REDIS_URL, result_ex_time=600))
_session: Any = None


@taskiq_broker.task(task_name="bench.call_stub_async")
async def call_stub_async(prompt: str) -> str:
    global _session  # one pooled session per worker process, as a real task module would keep
    import aiohttp

    if _session is None:
        _session = aiohttp.ClientSession()
    async with _session.post(STUB_URL + "/v1/chat/completions", data=_body(prompt),
                             headers={"content-type": "application/json"}) as resp:
        return str((await resp.json())["choices"][0]["message"]["content"])
