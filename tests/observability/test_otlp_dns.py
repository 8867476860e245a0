"""A collector whose name does not resolve in time (its DNS server down or dropping queries): the lookups must not
take the event loop's shared thread pool. aiohttp resolves with `loop.getaddrinfo`, in the loop's default executor
(6 threads on a 2-core machine), which the request path uses too (the privacy guard's scan, the answer cache's
SQLite, the upstreams' own lookups); a lookup that `tracing.timeout` gave up on still holds its thread until the
resolver returns (glibc: 5 s a try, 2 tries, each name server). Held (session 30): aiohttp (3.10 and later) shares
one lookup of a host among every connection waiting for it and lets it finish in the background when they give up,
so four exports that timed out made one lookup. Regression cover for an aiohttp change or a resolver of our own."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.harness import wait_for

HOST = "otlp-collector.dns-down.test"
MSG = [{"role": "user", "content": "hi"}]


class HungDns:
    """`socket.getaddrinfo` for HOST blocks until released; counts the lookups waiting at once."""

    def __init__(self, monkeypatch) -> None:
        self.real = socket.getaddrinfo
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.waiting = self.most = self.started = 0
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, *a, **kw):
        if host != HOST:
            return self.real(host, *a, **kw)
        with self.lock:
            self.started += 1
            self.waiting += 1
            self.most = max(self.most, self.waiting)
        try:
            self.release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        finally:
            with self.lock:
                self.waiting -= 1


def test_a_collector_name_that_does_not_resolve_holds_one_thread_at_most(two_tier, anthropic_up, monkeypatch):
    dns = HungDns(monkeypatch)
    try:
        g = two_tier(observability={"tracing": {"endpoint": f"http://{HOST}:4318/v1/traces", "interval": 0.05,
                                                "timeout": 0.2, "batch_size": 1}})
        anthropic_up.default = Reply(text="hi")
        for _ in range(4):
            assert oai(g).chat.completions.create(model="main", messages=MSG).choices[0].message.content == "hi"
        exporter = g.gateway.observer.exporter
        assert wait_for(lambda: exporter.dropped >= 4, timeout=30)  # four exports tried, each gave up
        assert dns.started >= 1, dns.started
        assert dns.most == 1, f"{dns.most} threads held by the collector's lookups"

        async def in_default_executor() -> float:  # the loop's shared pool still runs at once
            t = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(None, time.sleep, 0)
            return time.monotonic() - t

        assert asyncio.run_coroutine_threadsafe(in_default_executor(), g.loop).result(30) < 5
    finally:
        dns.release.set()
