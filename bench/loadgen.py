"""Load generator for the overhead benchmark; runs in its own process, prints JSON.

Modes:
  serial  N requests one at a time: latency per request (and TTFT when --stream)
  closed  C concurrent workers for D seconds: throughput, errors, latencies
  open    a fixed arrival rate R for D seconds; latency measured from the scheduled
          send time, so a stalled server cannot hide its queueing (no coordinated omission)

    python bench/loadgen.py --url http://127.0.0.1:4000 --api openai --mode serial -n 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

OAI = {"model": "m", "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
ANT = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
RESP = {"model": "m", "input": "Say hello in one short sentence."}  # OpenAI Responses API
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "responses": "/v1/responses"}


def request_for(api: str, stream: bool, model: str, extra_headers: dict[str, str] | None = None
                ) -> tuple[str, bytes, dict[str, str]]:
    body = dict(ANT if api == "anthropic" else RESP if api == "responses" else OAI)
    body["model"] = model
    if stream:
        body["stream"] = True
    path = PATHS[api]
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench", "x-api-key": "sk-bench",
               "anthropic-version": "2023-06-01", **(extra_headers or {})}
    return path, json.dumps(body).encode(), headers


async def one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
              stream: bool) -> tuple[bool, float, float]:
    t0 = time.perf_counter()
    ttft = 0.0
    try:
        async with session.post(url, data=body, headers=headers) as r:
            if stream:
                first = True
                async for _ in r.content.iter_any():
                    if first:
                        ttft = time.perf_counter() - t0
                        first = False
            else:
                await r.read()
            ok = r.status == 200
    except (TimeoutError, aiohttp.ClientError):
        ok = False
    total = time.perf_counter() - t0
    return ok, total, ttft or total


async def run(a: argparse.Namespace) -> dict:
    extra = dict(h.split(":", 1) for h in a.header)
    path, body, headers = request_for(a.api, a.stream, a.model, {k.strip(): v.strip() for k, v in extra.items()})
    url = a.url + path
    conn = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    lat: list[float] = []
    ttfts: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
        for _ in range(a.warmup):
            await one(s, url, body, headers, a.stream)
        t_start = time.perf_counter()
        if a.mode == "serial":
            for _ in range(a.n):
                ok, t, f = await one(s, url, body, headers, a.stream)
                errors += not ok
                lat.append(t)
                ttfts.append(f)
        elif a.mode == "closed":
            stop = t_start + a.duration

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < stop:
                    ok, t, f = await one(s, url, body, headers, a.stream)
                    errors += not ok
                    lat.append(t)
                    ttfts.append(f)

            await asyncio.gather(*(worker() for _ in range(a.concurrency)))
        else:  # open loop
            interval = 1.0 / a.rate
            total = int(a.rate * a.duration)
            tasks = []

            async def timed(sched: float) -> None:
                nonlocal errors
                ok, t, f = await one(s, url, body, headers, a.stream)
                now = time.perf_counter()
                errors += not ok
                lat.append(now - sched)
                ttfts.append(f + (now - t - sched))

            for i in range(total):
                sched = t_start + i * interval
                delay = sched - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(timed(sched)))
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t_start
    lat.sort()
    ttfts.sort()

    def pct(xs: list[float], p: float) -> float:
        return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else float("nan")

    return {
        "mode": a.mode, "requests": len(lat), "errors": errors, "elapsed_s": elapsed,
        "rps": len(lat) / elapsed if elapsed else 0.0,
        "p50_ms": pct(lat, 0.50), "p99_ms": pct(lat, 0.99),
        "ttft_p50_ms": pct(ttfts, 0.50), "ttft_p99_ms": pct(ttfts, 0.99),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--api", choices=["openai", "anthropic", "responses"], default="openai")
    ap.add_argument("--model", default="m")
    ap.add_argument("--mode", choices=["serial", "closed", "open"], default="serial")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--header", action="append", default=[], help="extra request header NAME:VALUE (repeatable)")
    a = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(a))))


if __name__ == "__main__":
    main()
