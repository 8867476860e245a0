"""Fixtures of the distributed-mode tests: worker configs on the upstream doubles, workers run
in-process (an asyncio task) or as real `tierwise worker` processes, and a Redis of the test's
own for the tests that stop it (never the shared one on 6379)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from click.testing import CliRunner

from tests.budgets.conftest import REDIS_URL, redis_prefix  # noqa: F401 (the same fixture)
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import make_config, own_keys
from tierwise.cli import main

FAST = {"visibility_timeout": 1.0, "max_attempts": 3, "timeout": 20}
FAST_WORKER = {"heartbeat": 0.2, "block": 0.5}
# A worker stays present this long after its last heartbeat. 1 s (the setting of the tests that watch presence
# expire pass it) dropped a live in-process worker whenever its loop stalled ~1 s on a loaded machine: its
# callers got NoWorker ("none is present") in the middle of tests that are not about presence.
PRESENCE_TTL = 10.0


def worker_config(upstream: str, prefix: str, *, worker_id: str, capabilities: dict[str, Any] | None = None,
                  locality: str = "local", tenant: str = "acme", capacity: int = 4, redis_url: str = REDIS_URL,
                  provider_locality: str = "local", presence_ttl: float = PRESENCE_TTL, **dispatch: Any) -> dict[str, Any]:
    """A worker's tierwise config: one model on the OpenAI double, served as `classify`."""
    return {
        "ledger": {"enabled": False},
        "providers": {"box": {"kind": "openai", "base_url": upstream + "/v1", "locality": provider_locality,
                              "timeouts": {"connect": 10, "read": 10}}},  # connect: a stalled loop ran out 1 s
        "models": {"small": {"provider": "box", "model": "small-model"}},
        "dispatch": {"redis_url": redis_url, "prefix": prefix, "tenant": tenant, **FAST, **dispatch,
                     "worker": {"id": worker_id, "locality": locality, "capacity": capacity, **FAST_WORKER,
                                "presence_ttl": presence_ttl,
                                "capabilities": capabilities or {"classify": {"model": "small"}}}},
    }


def echo(delay: float = 0.0) -> Any:
    """An upstream answer that names the prompt it answers (so a result can be matched to its task)."""
    from tests.doubles import Delay, Reply

    def answer(rec: Any) -> Any:
        return Reply(text="echo:" + str(rec.body["messages"][-1]["content"]), usage=(5, 2))

    return Delay(delay, then=answer) if delay else answer


class HoldAfter:
    """An upstream script for killing a worker mid-run: the first `first` calls are answered at once, every later one
    is held until `release` is set, so the workers' slots fill with calls they will not finish before the kill
    (killed by timing alone, a loaded machine killed a worker that held nothing). With `most`, only that many are
    held and the calls after them answered at once (`HoldAfter(0, most=1)`: a task held while others go on)."""

    def __init__(self, first: int = 20, most: int | None = None) -> None:
        self.answered: list[Any] = []
        self.held: list[Any] = []
        self.release = threading.Event()
        self._first, self._most = first, most
        self._lock = threading.Lock()

    def __call__(self, rec: Any) -> Any:
        from tests.doubles import Gate

        with self._lock:
            if self._most is not None and len(self.held) >= self._most:
                self.answered.append(rec)
                return echo()(rec)
            if len(self.answered) < self._first:
                self.answered.append(rec)
                return echo(0.1)
            self.held.append(rec)
        return Gate(self.release, then=echo())

    async def until_held(self, n: int, timeout_s: float = 60.0) -> None:
        """Until `n` calls are held upstream (both workers' four slots: 8)."""
        deadline = time.monotonic() + timeout_s
        while len(self.held) < n:
            assert time.monotonic() < deadline, len(self.held)
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running_worker(data: dict[str, Any], tmp_path: Path) -> AsyncIterator[Any]:
    """A Worker in this event loop, until the block ends."""
    from tierwise.dispatch.serving import add_ensemble_routes
    from tierwise.dispatch.worker import Worker
    from tierwise.server.build import build_gateway

    cfg = make_config(data, tmp_path)
    assert cfg.dispatch is not None and cfg.dispatch.worker is not None
    add_ensemble_routes(cfg, cfg.dispatch.worker)
    gw = build_gateway(cfg)
    w = Worker(cfg, gw)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(w.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield w
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await gw.close()


class WorkerProcess:
    """A real `tierwise worker -c worker.yaml` process."""

    def __init__(self, data: dict[str, Any], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "worker.yaml"
        self.path.write_text(yaml.safe_dump(data, sort_keys=False))
        self.log = folder / "worker.log"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "tierwise.cli", "worker", "-c", str(self.path)],
                                         cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while b"tierwise: worker " not in self.log.read_bytes():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.05)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_bytes().decode("utf-8", "replace")


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(data: dict[str, Any], name: str) -> WorkerProcess:
        p = WorkerProcess(data, tmp_path / name)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def printed_rules(data: dict[str, Any], tmp_path: Path, name: str) -> list[str]:
    """The rules `tierwise worker --acl` prints for the worker config `data` (written to tmp_path/name): the words
    after `ACL SETUSER <user> on ><password>`, as an operator applies them."""
    (tmp_path / name).write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(main, ["worker", "-c", str(tmp_path / name), "--acl"])
    assert out.exit_code == 0, out.output
    words = shlex.split(out.stdout)
    assert words[:2] == ["ACL", "SETUSER"] and words[3:5] == ["on", "><password>"], out.stdout
    return words[5:]


@pytest.fixture
def db_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix of the test's own on the database its module names (`DB`), its keys deleted after."""
    yield from own_keys(f"redis://127.0.0.1:6379/{request.module.DB}", "tierwise-test:")


@pytest.fixture
def db_acl_users(request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """acl_user_maker on the database the test's module names (`DB`)."""
    with acl_user_maker(request.module.DB) as make:
        yield make


@contextmanager
def acl_user_maker(db: int) -> Iterator[Callable[..., str]]:
    """`make(rules, db=db)`: a Redis ACL user of the shared Redis (127.0.0.1:6379) with these rules, a fresh name and
    password; returns a redis URL on database `db` that logs in as it. The users are deleted on exit."""
    admin = redis.Redis.from_url(f"redis://127.0.0.1:6379/{db}")
    made: list[str] = []

    def make(rules: list[str], db: int = db) -> str:
        name = f"tierwise-test-{uuid.uuid4().hex[:10]}"
        password = secrets.token_hex(16)
        admin.execute_command("ACL", "SETUSER", name, "on", f">{password}", *rules)
        made.append(name)
        return f"redis://{name}:{password}@127.0.0.1:6379/{db}"

    try:
        yield make
    finally:
        for name in made:
            admin.acl_deluser(name)
        admin.close()


def presence_confined(r: redis.Redis, prefix: str) -> None:
    """The presence reader's user (`--acl presence`, tenant `acme`) reads no task stream, no other tenant's presence
    record, and writes no presence record."""
    for key in (f"{prefix}{{acme}}:q:any:classify:normal", f"{prefix}presence:globex:w"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.get(key)
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.set(f"{prefix}presence:acme:planted", b"{}")
