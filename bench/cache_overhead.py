"""What the exact answer cache costs the gateway, side by side in one run.

One stub upstream (bench/stub_upstream.py) and, each in its own process, `tierwise serve` with the
cache off, with the cache on (memory backend) and with the cache on (Redis backend). Every round
measures every case one after the other (order reversed on odd rounds), so compared figures sit
next to each other in time; medians over rounds are reported.

Cases:
  direct     straight to the stub (the floor the "added" latency is measured from)
  off        tierwise, no `cache:` section
  miss       cache on, every request new (key, lookup, miss, store)
  hit        cache on, the same request again (key, lookup, replay; the stub is not called)
Serial: N requests one at a time, p50 latency; added = case p50 - direct p50 of the same round.
Closed: C concurrent clients for D seconds, requests per second.
The cached route opts into sampled answers (`sampled: true`) so the plain loadgen body is cacheable.

    nice -n 5 python bench/cache_overhead.py --rounds 4 [--no-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gateway_overhead import Proc, free_port, start_stub  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from tests.harness import drop_redis_keys  # noqa: E402


def serve(workdir: Path, stub: Proc, cache: str) -> Proc:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tierwise.yaml").write_text(f"""
server: {{port: {port}, default_route: main}}
ledger: {{path: {workdir / "ledger.db"}}}
providers:
  stub: {{kind: openai, base_url: "http://127.0.0.1:{stub.port}/v1", locality: local}}
models:
  m: {{provider: stub, model: stub-model}}
routes:
  main: [m]
{cache}
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return Proc(workdir.name, [sys.executable, "-m", "tierwise.cli", "serve", "-c", str(workdir / "tierwise.yaml")],
                port, env=env)


def body(tag: str | None, model: str = "main", text: str = "Say hello in one short sentence.") -> bytes:
    text += f" #{tag}" if tag else ""
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}]}).encode()


REWORDED = "say hello in one short sentence."  # the semantic hit case: accepted at the 1% point (p 0.94)


def fixed_body(unique: bool | str) -> bytes:
    """The body of a case that repeats one request: the plain one, or (semantic hit) a rewording."""
    return body(None, text=unique) if isinstance(unique, str) else body(None)


async def serial(url: str, n: int, unique: bool | str) -> float:
    lat = []
    nonce = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        fixed = fixed_body(unique)
        if isinstance(unique, str):  # the semantic hit case: the original question first
            async with s.post(url, data=body(None), headers={"content-type": "application/json"}) as r:
                await r.read()
        for i in range(n + 20):
            b = body(f"{nonce}-{i}") if unique is True else fixed
            t0 = time.perf_counter()
            async with s.post(url, data=b, headers={"content-type": "application/json"}) as r:
                await r.read()
                assert r.status == 200, r.status
            if i >= 20:  # warm-up
                lat.append(time.perf_counter() - t0)
    return statistics.median(lat) * 1000


async def closed(url: str, conc: int, duration: float, unique: bool | str, model: str = "main") -> float:
    nonce = uuid.uuid4().hex[:8]
    count = 0
    fixed = body(None, model) if not isinstance(unique, str) else fixed_body(unique)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        for prime in (body(None, model), fixed):  # the semantic hit case needs the original question stored
            async with s.post(url, data=prime, headers={"content-type": "application/json"}) as r:
                await r.read()
        stop = time.perf_counter() + duration

        async def worker(w: int) -> None:
            nonlocal count
            i = 0
            while time.perf_counter() < stop:
                b = body(f"{nonce}-{w}-{i}", model) if unique is True else fixed
                async with s.post(url, data=b, headers={"content-type": "application/json"}) as r:
                    await r.read()
                count += 1
                i += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(conc)))
        return count / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument("--semantic", action="store_true", help="also a memory-backend gateway whose route uses the "
                    "semantic tier: a new question each time (embedding, verifier on the nearest 4, store, index) "
                    "and a reworded question (a semantic hit)")
    a = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="cache-overhead-"))
    stub = start_stub(0.0)
    prefix = f"tw-bench-cache-{uuid.uuid4().hex[:6]}:"
    cached = "cache: {enabled: true, all_routes: true, routes: {main: {sampled: true}}%s}"
    procs = {"off": serve(scratch / "off", stub, ""),
             "memory": serve(scratch / "memory", stub, cached % "")}
    if not a.no_redis:
        procs["redis"] = serve(scratch / "redis", stub, cached % f", backend: redis, redis_prefix: '{prefix}'")
    if a.semantic:
        procs["semantic"] = serve(scratch / "semantic", stub, "cache: {enabled: true, routes: {main: {sampled: true, "
                                  "semantic: true}}}")
    path = "/v1/chat/completions"
    cases: list[tuple[str, str, bool | str]] = [
        ("direct", f"http://127.0.0.1:{stub.port}/v1/chat/completions", False), ("off", "off", False)]
    for b in procs:
        if b == "semantic":
            cases += [("semantic miss", b, True), ("semantic hit (reworded)", b, REWORDED)]
        elif b != "off":
            cases += [(f"{b} miss", b, True), (f"{b} hit", b, False)]
    lat: dict[str, list[float]] = {c: [] for c, _, _ in cases}
    rps: dict[str, list[float]] = {c: [] for c, _, _ in cases if c != "direct"}
    try:
        for rnd in range(a.rounds):
            order = cases if rnd % 2 == 0 else list(reversed(cases))
            for name, where, unique in order:
                url = where if where.startswith("http") else f"http://127.0.0.1:{procs[where].port}{path}"
                lat[name].append(asyncio.run(serial(url, a.n, unique)))
                if name != "direct":
                    rps[name].append(asyncio.run(closed(url, a.concurrency, a.duration, unique)))
            print(f"round {rnd + 1}: " + ", ".join(f"{k} {v[-1]:.3f} ms" for k, v in lat.items()), flush=True)
    finally:
        for p in procs.values():
            p.stop()
        stub.stop()
        if not a.no_redis:
            drop_redis_keys("redis://127.0.0.1:6379/0", prefix)
    added = {c: statistics.median([x - d for x, d in zip(lat[c], lat["direct"], strict=True)]) for c in lat}
    print(f"\n{a.rounds} rounds; serial n={a.n}; closed loop {a.concurrency} clients x {a.duration:.0f} s (medians)")
    print("| case | p50 ms | added p50 ms | vs off, ms | req/s | vs off |")
    print("|---|---|---|---|---|---|")
    for c, _, _ in cases:
        r = statistics.median(rps[c]) if c in rps else None
        vs = "" if c in ("direct", "off") else f"{added[c] - added['off']:+.3f}"
        ratio = "" if r is None or c == "off" else f"{r / statistics.median(rps['off']):.2f}x"
        print(f"| {c} | {statistics.median(lat[c]):.3f} | {added[c]:.3f} | {vs} | "
              f"{'' if r is None else f'{r:.0f}'} | {ratio} |")


if __name__ == "__main__":
    main()
