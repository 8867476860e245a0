"""A tokens_per_minute limit holds under concurrent clients: shared by two real gateways, and in one.

The limit counted only each request's input estimate at admission and its real total at settlement:
requests arriving together were all admitted on their small inputs, and their answers came in after
the admissions. Twenty concurrent clients over two gateways got 8,800 tokens through a 2,000-token
limit. The answer's cap (max_tokens) now counts at admission too.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import redis

from tests.budgets.test_race import frontier_gateway
from tests.doubles import AnthropicDouble, Delay, Reply
from tests.harness import ServeProcess, drop_redis_keys, free_port

REDIS_URL = "redis://127.0.0.1:6379/12"
USAGE = (40, 400)
LIMIT = 2000


class Counting(AnthropicDouble):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.tokens = 0
        self.default = self.counted

    def counted(self, rec: Any) -> Any:
        with self.lock:
            self.tokens += USAGE[0] + USAGE[1]
        return Delay(0.3, Reply(text="answer", usage=USAGE))  # long enough for the requests to overlap


def config(port: int, tmp: Path, up: str, prefix: str, backend: str) -> str:
    return frontier_gateway(port, tmp, up) + f"""budgets:
  store: {{backend: {backend}, redis_url: "{REDIS_URL}", key_prefix: "{prefix}"}}
rate_limits:
  limits:
    - {{name: tpm, per: global, tokens_per_minute: {LIMIT}}}
"""


async def fire(urls: list[str], n: int) -> list[str]:
    hc = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n), timeout=60)
    oas = [openai.AsyncOpenAI(base_url=u + "/v1", api_key="k", max_retries=0, http_client=hc) for u in urls]

    async def one(i: int) -> str:
        try:
            await oas[i % len(oas)].chat.completions.create(model="main", max_tokens=500, messages=[
                {"role": "user", "content": f"question {i}"}])
            return "answered"
        except openai.RateLimitError as e:
            assert e.body["code"] == "rate_limit_exceeded" and "tokens per minute" in e.body["message"]
            return "429"

    try:
        return await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await hc.aclose()


@pytest.mark.parametrize("backend,gateways", [("redis", 2), ("memory", 1)])
def test_tokens_per_minute_holds_across_gateways_under_concurrency(tmp_path, backend, gateways):
    up = Counting()
    up.start()
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    servers = []
    try:
        for _ in range(gateways):
            p = free_port()
            path = tmp_path / f"tw-{p}.yaml"
            path.write_text(config(p, tmp_path, up.url, prefix, backend))
            servers.append(ServeProcess(path, p, tmp_path))
        if time.time() % 60 > 50:  # keep the burst inside one clock minute (a new minute makes room)
            time.sleep(61 - time.time() % 60)
        outcomes = asyncio.run(fire([s.url for s in servers], 20))
        assert "429" in outcomes
        # Each admission counts ~550 tokens (input estimate + max_tokens): 3 fit in 2,000; each answer costs 440.
        assert up.tokens <= LIMIT, (up.tokens, outcomes.count("answered"))
    finally:
        for s in servers:
            s.stop()
        up.stop()
        drop_redis_keys(REDIS_URL, prefix)


def test_budget_status_finds_its_buckets_under_a_prefix_with_glob_characters(tmp_path):
    # `key_prefix` may hold glob characters; the status's SCAN read them as a glob and found no bucket.
    up = Counting()
    up.start()
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}[eu]*:"
    p = free_port()
    path = tmp_path / f"tw-{p}.yaml"
    path.write_text(config(p, tmp_path, up.url, prefix, "redis").replace(
        "budgets:\n", "budgets:\n  limits: [{name: day, usd: 100, per: route}]\n", 1))
    s = ServeProcess(path, p, tmp_path)
    try:
        s.keep(openai.OpenAI(base_url=s.url + "/v1", api_key="k", max_retries=0)).chat.completions.create(
            model="main", max_tokens=500, messages=[{"role": "user", "content": "hello"}])
        st = httpx2.get(s.url + "/v1/tierwise/budgets", timeout=10).json()
        rows = [b for b in st["budgets"] if b["budget"] == "day"]
        assert [b["value"] for b in rows] == ["main"] and rows[0]["usd_used"] > 0, st
    finally:
        s.stop()
        up.stop()
        r = redis.Redis.from_url(REDIS_URL)
        keys = [k for k in r.scan_iter(match="tierwise-test:*", count=1000) if k.decode().startswith(prefix)]
        if keys:
            r.delete(*keys)
        r.close()
