from __future__ import annotations

import os
import time
from typing import Any

import httpx2 as httpx
import pytest

from tests.budgets.conftest import REDIS_URL, redis_prefix  # noqa: F401 (the same fixtures)
from tests.gateway.conftest import anthropic_up, gateway, openai_up, two_tier  # noqa: F401

ADMIN = "admin-secret-key"
GW_KEY = "gw-secret-key"
PATH = "/v1/tierwise/approvals"


def admin_get(url: str, key: str = ADMIN) -> httpx.Response:
    return httpx.get(url + PATH, headers={"authorization": f"Bearer {key}"}, timeout=10)


def decide(url: str, id: str, decision: str, reason: str | None = None, key: str = ADMIN) -> httpx.Response:
    return httpx.post(url + PATH, headers={"authorization": f"Bearer {key}"}, timeout=10,
                      json={"id": id, "decision": decision, "reason": reason})


def wait_pending(url: str, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The pending approvals once there are `n` (a request in flight reaches its gate in a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        pending = admin_get(url).json()["pending"]
        if len(pending) >= n or time.monotonic() > deadline:
            return pending  # type: ignore[no-any-return]
        time.sleep(0.02)


def approvals_config(**gate: Any) -> dict[str, Any]:
    return {"routes": {"main": {"timeout": "30s", **gate}}}


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


needs_redis = pytest.mark.skipif(not _redis_up() and os.environ.get("CI") != "true",
                                 reason="no Redis at 127.0.0.1:6379 (required under CI=true)")


class OwnRedis:
    """A redis-server of this test's own on a free port, which the test may restart."""

    def __init__(self, workdir: str, persist: bool) -> None:
        from tests.harness import free_port

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", workdir,
                     "--save", "", "--appendonly", "yes" if persist else "no"]
        self.proc: Any = None

    def start(self) -> None:
        import subprocess

        import redis

        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: redis flushes its append-only file before it exits
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_redis(tmp_path):
    import shutil

    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required under CI=true")
        pytest.skip("redis-server is not installed")
    servers: list[OwnRedis] = []

    def make(persist: bool = True) -> OwnRedis:
        d = tmp_path / f"redis{len(servers)}"
        d.mkdir()
        r = OwnRedis(str(d), persist)
        r.start()
        servers.append(r)
        return r

    yield make
    for r in servers:
        r.stop()
