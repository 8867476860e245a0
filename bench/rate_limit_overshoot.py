"""How far past a shared rate limit do N gateways x M concurrent clients get?

Real processes: `--gateways` `tierwise serve` processes share one Redis rate limit (`per: global`, a
database and key prefix of this run's own); `--clients` OpenAI SDK clients send chat completions through
them round robin, as fast as the gateways answer, for `--seconds` starting just after a clock minute
begins (so the previous minute counts nothing and the sliding minute is the clock minute). The upstream
double answers after `--delay` seconds and counts what it really served: requests, and tokens (its own
input count plus the output it wrote, reported in usage). The figure is what reached the upstream within
the run divided by the limit.

    PYTHONPATH=src .venv/bin/python bench/rate_limit_overshoot.py --mode rpm --limit 120
    PYTHONPATH=src .venv/bin/python bench/rate_limit_overshoot.py --mode tpm --limit 20000 --max-tokens 400
    PYTHONPATH=src .venv/bin/python bench/rate_limit_overshoot.py --mode rpm --limit 120 --straddle --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.doubles import Delay, OpenAIDouble, Reply  # noqa: E402
from tests.harness import ServeProcess, drop_redis_keys, free_port  # noqa: E402

WORD = "x" * 39 + " "  # 40 characters: 10 tokens at 4 characters a token


class Upstream(OpenAIDouble):
    def __init__(self, delay: float, out: int) -> None:
        super().__init__()
        self.delay, self.out = delay, out
        self.lock = threading.Lock()
        self.served = 0
        self.tokens = 0
        self.times: list[float] = []
        self.default = self.generate

    def generate(self, rec: Any) -> Any:
        body = rec.body
        cap = body.get("max_completion_tokens") or body.get("max_tokens") or self.out
        out = min(cap, self.out)
        inp = len(rec.raw) // 4
        with self.lock:
            self.served += 1
            self.tokens += inp + out
            self.times.append(time.time())
        return Delay(self.delay, Reply(text=WORD * (out // 10), usage=(inp, out)))


def config(port: int, tmp: Path, up: str, url: str, prefix: str, mode: str, limit: int) -> str:
    field = "requests_per_minute" if mode == "rpm" else "tokens_per_minute"
    return f"""
server: {{port: {port}, default_route: main}}
ledger: {{path: {tmp / f'ledger-{port}.db'}}}
providers:
  cloud: {{kind: openai, base_url: "{up}/v1", locality: remote, timeouts: {{connect: 5, read: 60}}}}
models:
  frontier: {{provider: cloud, model: big-model, price: {{input: 3, output: 15}}}}
routes:
  main: {{policy: fallback, targets: [frontier], retries: 0}}
budgets:
  store: {{backend: redis, redis_url: "{url}", key_prefix: "{prefix}"}}
rate_limits:
  limits:
    - {{name: shared, per: global, {field}: {limit}}}
"""


async def clients(urls: list[str], m: int, seconds: float, max_tokens: int | None) -> dict[str, int]:
    hc = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=m, max_keepalive_connections=m), timeout=120)
    oas = [openai.AsyncOpenAI(base_url=u + "/v1", api_key="k", max_retries=0, http_client=hc) for u in urls]
    seen: dict[str, int] = {}
    end = time.monotonic() + seconds

    async def one(i: int) -> None:
        oc = oas[i % len(oas)]
        j = 0
        while time.monotonic() < end:
            j += 1
            kw: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
            try:
                await oc.chat.completions.create(model="main", messages=[
                    {"role": "user", "content": f"client {i} question {j}"}], **kw)
                seen["answered"] = seen.get("answered", 0) + 1
            except openai.APIStatusError as e:
                seen[f"http {e.status_code}"] = seen.get(f"http {e.status_code}", 0) + 1
                await asyncio.sleep(0.05)

    try:
        await asyncio.gather(*(one(i) for i in range(m)))
    finally:
        await hc.aclose()
    return seen


def run(args: argparse.Namespace, tmp: Path) -> tuple[Upstream, dict[str, int]]:
    up = Upstream(args.delay, args.out)
    up.start()
    prefix = f"tierwise-bench-rate:{uuid.uuid4().hex[:10]}:"
    servers = []
    try:
        for _ in range(args.gateways):
            p = free_port()
            path = tmp / f"tw-{p}.yaml"
            path.write_text(config(p, tmp, up.url, args.redis, prefix, args.mode, args.limit))
            servers.append(ServeProcess(path, p, tmp))
        # Start 1 s into a clock minute and stop well before its end: the run is inside one clock minute,
        # whose count the two-bucket sliding minute never lets past the limit.
        if args.straddle:  # start half way through a minute: the run spans two clock minutes
            time.sleep((90 - time.time() % 60) % 60)
        else:
            wait = (60 - time.time() % 60) + 1
            if wait > 59 - args.seconds:
                time.sleep(wait)
        seen = asyncio.run(clients([s.url for s in servers], args.clients, args.seconds, args.max_tokens))
        return up, seen
    finally:
        for s in servers:
            s.stop()
        up.stop()
        drop_redis_keys(args.redis, prefix)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    ap.add_argument("--mode", choices=["rpm", "tpm"], default="rpm")
    ap.add_argument("--limit", type=int, default=120)
    ap.add_argument("--gateways", type=int, default=3)
    ap.add_argument("--clients", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--delay", type=float, default=0.3, help="seconds the upstream takes per answer")
    ap.add_argument("--out", type=int, default=400, help="output tokens the upstream writes (at most)")
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--straddle", action="store_true", help="rpm: start at :30 and report the most requests in "
                    "any 60 s window (the two-bucket sliding minute's documented edge)")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent / "src"))
    print(f"{args.gateways} gateways x {args.clients} clients, {args.mode} limit {args.limit}, {args.seconds:g} s "
          f"{'from :30 (two clock minutes)' if args.straddle else 'inside one clock minute'}, upstream {args.delay:g} s / {args.out} tokens out, max_tokens {args.max_tokens}")
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            up, seen = run(args, Path(d))
        got = up.served if args.mode == "rpm" else up.tokens
        if args.straddle:
            ts = sorted(up.times)
            got = max(sum(1 for u in ts[i:] if u < t + 60) for i, t in enumerate(ts)) if ts else 0
            print(f"  most requests in any 60 s window: {got}")
        print(f"  upstream saw {up.served} requests, {up.tokens} tokens; clients {dict(sorted(seen.items()))}; "
              f"allowed/limit = {got}/{args.limit} = {got / args.limit:.3f}", flush=True)


if __name__ == "__main__":
    main()
