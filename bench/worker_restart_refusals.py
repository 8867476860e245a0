"""Requests refused while a worker restarts on purpose (stop, start again), measured on a real Redis.

Two layouts: the caller's only worker restarts (`only`), and the only worker listing the caller restarts while
another worker, listing other callers, stays (`lister`). A request is published every `--every` seconds from the
stop until `--gap` seconds after it, when the worker starts again; each is counted served or refused (NoWorker).

    PYTHONPATH=src:. .venv/bin/python bench/worker_restart_refusals.py --redis redis://127.0.0.1:6379/14
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

from tests.dispatch.conftest import echo, running_worker, worker_config
from tests.doubles import OpenAIDouble
from tests.harness import drop_redis_keys
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.errors import NoWorker


async def one(layout: str, url: str, gap: float, every: float, up: OpenAIDouble, tmp: Path) -> tuple[int, int]:
    prefix = f"restart-{uuid.uuid4().hex[:8]}:"

    def cfg(wid: str, callers: list[str]) -> dict[str, object]:
        return worker_config(up.url, prefix, worker_id=wid, locality="remote", provider_locality="remote",
                             callers=callers, redis_url=url)

    served = refused = 0
    try:
        async with Dispatcher(url, tenant="acme", prefix=prefix, caller="app") as d:
            other = running_worker(cfg("w2", ["other"]), tmp / f"{prefix}w2") if layout == "lister" else None
            if other is not None:
                await other.__aenter__()
            async with running_worker(cfg("w1", ["app"]), tmp / f"{prefix}w1"):
                await d.dispatch("classify", "warm", timeout=20)
            tasks = []
            for i in range(int(gap / every)):
                tasks.append(asyncio.create_task(d.dispatch("classify", f"r{i}", timeout=30)))
                await asyncio.sleep(every)
            async with running_worker(cfg("w1", ["app"]), tmp / f"{prefix}w1b"):
                for t in tasks:
                    try:
                        await t
                        served += 1
                    except NoWorker:
                        refused += 1
            if other is not None:
                await other.__aexit__(None, None, None)
    finally:
        drop_redis_keys(url, prefix)
    return served, refused


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    ap.add_argument("--gap", type=float, default=2.0)
    ap.add_argument("--every", type=float, default=0.1)
    a = ap.parse_args()
    up = OpenAIDouble()
    up.start()
    up.default = echo()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for layout in ("only", "lister"):
                served, refused = await one(layout, a.redis, a.gap, a.every, up, Path(tmp))
                print(f"{layout}: {served} served, {refused} refused of {served + refused} published during a "
                      f"{a.gap:g} s restart")
    finally:
        up.stop()


if __name__ == "__main__":
    asyncio.run(main())
