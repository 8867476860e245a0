"""How long big request bodies hold the gateway's event loop, seen by a small request sent beside them.

One tierwise process (bench/gateway_overhead.py's gateway, stub upstream); a probe client sends small chat
requests one at a time for `--duration` seconds while `--flood` clients each send big bodies back to back
(`--size` MiB each, OpenAI chat, made of `--turns` user turns: a long agent session under the body-shape
limits; `--turns 1` is one long text). Reported: the probe's latency p50 / p99 / max (ms) and how many big
bodies were answered, first with no flood (the floor), then with it. Figures are wall-clock on a shared
machine: compare A and B run side by side (`--baseline-src`, alternating), not across runs.

    .venv/bin/python bench/big_body_stall.py --size 32 --flood 1,2,4 --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway_overhead import resolve_src, start_stub, start_tierwise  # noqa: E402
from loadgen import request_for  # noqa: E402


def big_body(mib: float, turns: int) -> bytes:
    per_turn = max(16, int(mib * 2**20 / turns) - 60)  # (under `--size` MiB with the JSON around it)
    text = ("lorem ipsum dolor sit amet " * (per_turn // 27 + 1))[:per_turn]
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": text} for i in range(turns - 1)]
    msgs.append({"role": "user", "content": text})
    return json.dumps({"model": "m", "max_tokens": 16, "messages": msgs}).encode()


async def _flood(port: int, body: bytes, flood: int, until: float) -> tuple[int, int]:
    """`flood` clients sending `body` back to back until `until` (time.time()): (answered 200, other)."""
    url = f"http://127.0.0.1:{port}"
    path, _, headers = request_for("openai", False, "m")
    done = [0, 0]

    async def one(s: aiohttp.ClientSession) -> None:
        while time.time() < until:
            async with s.post(url + path, data=body, headers=headers) as r:
                await r.read()
                done[r.status != 200] += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
        await asyncio.gather(*(one(s) for _ in range(flood)))
    return done[0], done[1]


def _flood_process(port: int, body: bytes, flood: int, until: float, out: Any) -> None:
    out.put(asyncio.run(_flood(port, body, flood, until)))


async def _probe(port: int, until: float) -> list[float]:
    url = f"http://127.0.0.1:{port}"
    path, small, headers = request_for("openai", False, "m")
    lat: list[float] = []
    async with aiohttp.ClientSession() as s:
        while time.time() < until:
            t = time.perf_counter()
            async with s.post(url + path, data=small, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            lat.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.005)
    return lat


def run(port: int, body: bytes, flood: int, duration: float) -> dict:
    """The probe in this process, the flood in another (its client work must not stall the probe's loop)."""
    until = time.time() + duration
    out: Any = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_flood_process, args=(port, body, flood, until, out)) if flood else None
    if proc:
        proc.start()
        time.sleep(0.5)  # the first big bodies on their way
    lat = sorted(asyncio.run(_probe(port, until)))
    big_done, big_err = out.get(timeout=180) if proc else (0, 0)
    if proc:
        proc.join()
    return {"flood": flood, "probe_n": len(lat), "p50": statistics.median(lat), "p99": lat[int(0.99 * (len(lat) - 1))],
            "max": lat[-1], "big_done": big_done, "big_err": big_err}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tierwise-src", default=str(HERE.parent))
    ap.add_argument("--baseline-src", default="")
    ap.add_argument("--size", type=float, default=32, help="MiB per big body")
    ap.add_argument("--turns", type=int, default=40_000, help="user/assistant turns in a big body")
    ap.add_argument("--flood", default="1,4", help="comma list: concurrent big-body clients")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tw-bigbody-"))
    trees = [("A", *resolve_src(a.tierwise_src, work))]
    if a.baseline_src:
        trees.append(("B", *resolve_src(a.baseline_src, work)))
    for tag, _, label in trees:
        print(f"{tag}: {label}", flush=True)
    body = big_body(a.size, a.turns)
    print(f"big body: {len(body) / 2**20:.1f} MiB, {a.turns} turns", flush=True)
    stub = start_stub(0.0)
    rows = []
    try:
        for rnd in range(a.rounds):
            order = trees if rnd % 2 == 0 else list(reversed(trees))
            for tag, src, _ in order:
                tw = start_tierwise(stub, work / f"{tag}-{rnd}", src, f"tierwise-{tag}")
                try:
                    for flood in [0, *map(int, a.flood.split(","))]:
                        r = run(tw.port, body, flood, a.duration)
                        r.update(tree=tag, round=rnd)
                        rows.append(r)
                        print(json.dumps(r), flush=True)
                finally:
                    tw.stop()
    finally:
        stub.stop()
    print("\n| tree | flood | probe p50 ms | probe p99 ms | probe max ms | big bodies answered | big errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for tag, _, _ in trees:
        for flood in [0, *map(int, a.flood.split(","))]:
            rs = [r for r in rows if r["tree"] == tag and r["flood"] == flood]
            p50, p99, top = (statistics.median(r[k] for r in rs) for k in ("p50", "p99", "max"))
            print(f"| {tag} | {flood} | {p50:.2f} | {p99:.1f} | {top:.1f} | "
                  f"{sum(r['big_done'] for r in rs)} | {sum(r['big_err'] for r in rs)} |")


if __name__ == "__main__":
    main()
