import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from tests.budgets.conftest import REDIS_URL, redis_prefix  # noqa: F401 (the same Redis fixtures)
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import free_port


class PrivateRedis:
    """A redis-server of this test's own on a free port, which the test may stop and start again
    (the shared Redis at 6379 must never be stopped)."""

    def __init__(self, tmp: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    r = PrivateRedis(str(tmp_path))
    r.start()
    yield r
    r.stop()
