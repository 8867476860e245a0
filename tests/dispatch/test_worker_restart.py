"""A worker restarted on purpose (stop, start again within its presence TTL) fails no request (session 38, review38b).

A worker stopping on purpose removed its presence entries at once: a request published while its only worker, or the
only worker listing its caller, was between two processes was refused at once (NoWorker, 503), though the worker came
back a second later (since dist9 also when other workers present list other callers only). Its entries now stay
until their TTL, as a killed worker's do: a request in the gap is queued and served by the worker started again; a
worker stopped for good leaves its callers' waiting tasks to end with NoWorker soon after its entries expire."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.dispatch.conftest import REDIS_URL, echo, running_worker, worker_config
from tierwise.dispatch.client import Dispatcher
from tierwise.dispatch.errors import NoWorker


def _worker(url: str, prefix: str, wid: str, callers: list[str], ttl: float = 10.0) -> dict[str, object]:
    return worker_config(url, prefix, worker_id=wid, locality="remote", provider_locality="remote", callers=callers,
                         presence_ttl=ttl)


async def _served_across_a_restart(d: Dispatcher, w1: dict[str, object], tmp_path: Path) -> None:
    """`w1` answers a request, stops, and is started again a second later: the request sent in the gap is served."""
    async with running_worker(w1, tmp_path / "w1"):
        assert (await d.dispatch("classify", "before", timeout=20)).text == "echo:before"
    during = asyncio.create_task(d.dispatch("classify", "during", timeout=30))
    await asyncio.sleep(1.0)  # the restart's gap
    async with running_worker(w1, tmp_path / "w1-again"):
        assert (await during).text == "echo:during"


@pytest.mark.asyncio
async def test_a_request_during_a_restart_of_the_only_worker_is_served(openai_up, redis_prefix, tmp_path):
    openai_up.default = echo()
    w1 = _worker(openai_up.url, redis_prefix, "w1", ["app-a"])
    async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-a") as a:
        await _served_across_a_restart(a, w1, tmp_path)


@pytest.mark.asyncio
async def test_a_request_during_a_restart_of_the_only_worker_listing_its_caller_is_served(
        openai_up, redis_prefix, tmp_path):
    openai_up.default = echo()
    w1, w2 = _worker(openai_up.url, redis_prefix, "w1", ["app-b"]), _worker(openai_up.url, redis_prefix, "w2", ["app-a"])
    async with running_worker(w2, tmp_path / "w2"), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-b") as b:
        await _served_across_a_restart(b, w1, tmp_path)


@pytest.mark.asyncio
async def test_a_task_of_a_worker_stopped_for_good_ends_soon_after_its_presence_expires(
        openai_up, redis_prefix, tmp_path):
    openai_up.default = echo()
    w1 = _worker(openai_up.url, redis_prefix, "w1", ["app-a"], ttl=2.0)
    async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, caller="app-a") as a:
        async with running_worker(w1, tmp_path / "w1"):
            assert (await a.dispatch("classify", "before", timeout=20)).text == "echo:before"
        t0 = time.monotonic()
        with pytest.raises(NoWorker, match="no worker serves capability 'classify'"):
            await a.dispatch("classify", "nobody comes back", timeout=60)
        waited = time.monotonic() - t0
        with pytest.raises(NoWorker, match="no worker serves capability 'classify'"):  # expired: refused at once
            await a.dispatch("classify", "later", timeout=60)
    assert waited < 40, waited  # (not the 60 s timeout)
