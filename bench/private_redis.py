"""A redis-server of a bench's own on a free loopback port (no persistence, its own folder), and the Redis time its
scripts took: figures that read Redis's own command statistics, untouched by other clients of the shared Redis."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_redis() -> Iterator[redis.Redis]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        try:
            r = redis.Redis(port=port)
            for _ in range(100):
                try:
                    r.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield r
        finally:
            proc.terminate()
            proc.wait(10)


def evalsha_usec(r: redis.Redis) -> tuple[int, float]:
    """EVALSHA calls so far and the microseconds Redis spent in them."""
    st = r.info("commandstats").get("cmdstat_evalsha", {})
    return int(st.get("calls", 0)), float(st.get("usec", 0))
