"""A task's deadline is read against Redis's clock, not the caller's nor the worker's.

The caller wrote the deadline with its own wall clock and the worker compared it with its own: a worker machine
whose clock ran 5 minutes ahead of the caller's (no NTP, a VM restored from a snapshot) answered every task "the
task expired before a worker could run it" (504), and one running behind kept running tasks its caller had given
up on for as long as the skew, unless its caller withdrew them (session 36, dist7). Presence already used Redis's clock; now the publishing script
stamps the deadline with Redis's TIME and the worker compares it with Redis's time (its heartbeat's offset).
Each machine's skew is played by shifting the clock the dispatch modules read, in this process."""

from __future__ import annotations

import time
import types

import pytest

from tests.dispatch.conftest import REDIS_URL, echo, running_worker, worker_config
from tierwise.dispatch import client as client_module
from tierwise.dispatch import presence as presence_module
from tierwise.dispatch import worker as worker_module
from tierwise.dispatch.client import Dispatcher

SKEW_S = 300.0


def _shifted_clock(by_s: float) -> types.SimpleNamespace:
    """A `time` module whose wall clock is off by `by_s` (monotonic and sleep unchanged)."""
    return types.SimpleNamespace(**{**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")},
                                    "time": lambda: time.time() + by_s})


def _worker_clock(monkeypatch, by_s: float) -> None:
    shifted = lambda: int((time.time() + by_s) * 1000)  # noqa: E731
    monkeypatch.setattr(presence_module, "now_ms", shifted)
    monkeypatch.setattr(worker_module, "now_ms", shifted)


@pytest.mark.asyncio
@pytest.mark.parametrize("worker_ahead", [True, False], ids=["worker-clock-ahead", "caller-clock-behind"])
async def test_a_task_runs_when_the_worker_and_the_caller_disagree_on_the_time(openai_up, redis_prefix, tmp_path,
                                                                              monkeypatch, worker_ahead):
    openai_up.default = echo()
    if worker_ahead:
        _worker_clock(monkeypatch, SKEW_S)
    else:
        monkeypatch.setattr(client_module, "time", _shifted_clock(-SKEW_S))
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote")
    async with running_worker(data, tmp_path / "w"), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, timeout=20) as d:
        got = await d.dispatch("classify", "on time", timeout=20)
    assert got.text == "echo:on time", got



@pytest.mark.asyncio
async def test_a_worker_s_clock_stepped_between_heartbeats_does_not_expire_its_tasks(openai_up, redis_prefix,
                                                                                     tmp_path, monkeypatch):
    """The worker's offset to Redis's clock was its wall clock's at the last heartbeat: when that clock stepped
    after it (an NTP correction, a VM resumed), every task until the next heartbeat (up to `heartbeat`, 5 s by
    default, at most an hour) was compared against the stepped clock: 5 minutes ahead, each answered "the task
    expired before a worker could run it" (session 36, review36d). Redis's time is now carried forward from the
    last heartbeat by the monotonic clock, which no step moves."""
    openai_up.default = echo()
    data = worker_config(openai_up.url, redis_prefix, worker_id="w1", locality="remote", provider_locality="remote",
                         presence_ttl=120.0, visibility_timeout=121.0)
    data["dispatch"]["worker"]["heartbeat"] = 60.0  # no heartbeat between the step and the task
    async with running_worker(data, tmp_path / "w"), \
            Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, timeout=20) as d:
        _worker_clock(monkeypatch, SKEW_S)  # the worker machine's clock steps 5 minutes ahead
        got = await d.dispatch("classify", "after the step", timeout=20)
    assert got.text == "echo:after the step", got
