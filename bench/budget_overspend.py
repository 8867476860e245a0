"""How far past a shared budget do N gateways x M concurrent streaming clients spend?

Real processes: `--gateways` `tierwise serve` processes share one Redis budget (`--usd` per day, a
database and key prefix of this run's own); `--clients` OpenAI SDK clients stream chat completions
through them, round robin, each until the budget refuses it (or `--per-client` requests). The
upstream double prices nothing itself: the bench knows what every answer really cost (the output it
generated and the input it read, at the config's prices) and reports the limit, that real spend and the
worst of `--runs` runs, per scenario:

- honest:      max_tokens 500, 400 tokens out, usage reported at the end of the stream;
- no-max:      no max_tokens (the gateway reserves default_max_output_tokens), the upstream writes
               until its own limit (`--long` tokens) unless the request caps it;
- no-usage:    max_tokens 500, 400 tokens out, the upstream ignores stream_options.include_usage
               (many OpenAI-compatible hosts);
- mid-fail:    max_tokens 500, the upstream streams 400 tokens, then an error event, no usage;
- n3:          n=3, max_tokens 500, 400 tokens out per choice, usage (all three choices) at the end (session 31);
- n3-no-usage: n=3 as above, the upstream ignores stream_options.include_usage (session 31);
- online:      honest, on an OpenRouter `:online` model: its web plugin bills $0.02 a call on top of the tokens,
               and the upstream says what it billed in `usage.cost` (session 32);
- online-unreported: the same without `usage.cost` (session 32).
- small-input: honest, but each prompt is 40,000 characters (~10,000 tokens, $0.03 of input) and the upstream
               reports 1 input token for it (session 37).
- small-pdf:   each prompt carries a 40-page PDF (2 KB: its pages in one compressed object stream), read as 1,500
               tokens a page ($0.18 of input), and the upstream reports 1 input token for it (session 38).

    PYTHONPATH=src .venv/bin/python bench/budget_overspend.py [--src /work/main/src] [--runs 5]
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
import zlib
from base64 import b64encode
from pathlib import Path
from typing import Any

import httpx2
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.doubles import OpenAIDouble, Reply, StreamError  # noqa: E402
from tests.harness import ServeProcess, drop_redis_keys, free_port  # noqa: E402

PRICE_IN, PRICE_OUT = 3.0, 15.0
ONLINE_FEE = 0.02  # OpenRouter's web plugin, 5 results at $4 per 1,000
WORD = "x" * 39 + " "  # 40 characters: 10 tokens at 4 characters a token
PDF_PAGES, PAGE_TOKENS = 40, 1_500  # (small-pdf: what a provider reads of each page, its text and its image)


def packed_pdf(pages: int) -> str:
    """A data: URL of a PDF whose page tree and `pages` blank pages sit in one Flate object stream."""
    objs = [b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % (3 + i) for i in range(pages)),
                                                          pages)]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages
    offs, body = [], b""
    for o in objs:
        offs.append(len(body))
        body += o + b"\n"
    head = b" ".join(b"%d %d" % (2 + i, off) for i, off in enumerate(offs)) + b"\n"
    data = zlib.compress(head + body)
    stm = (b"<< /Type /ObjStm /N %d /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
           % (len(objs), len(head), len(data)) + data + b"\nendstream")
    pdf = (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n9 0 obj\n" + stm
           + b"\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
    return "data:application/pdf;base64," + b64encode(pdf).decode()


class Upstream(OpenAIDouble):
    """Generates what a scenario says, and keeps what it really cost."""

    def __init__(self, scenario: str, long: int) -> None:
        super().__init__()
        self.scenario, self.long = scenario, long
        self.lock = threading.Lock()
        self.cost = 0.0
        self.default = self.generate

    def generate(self, rec: Any) -> Any:
        body = rec.body
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        out = 400 if self.scenario != "no-max" else (min(cap, self.long) if cap else self.long)
        inp = len(rec.raw) // 4 if self.scenario != "small-pdf" else PDF_PAGES * PAGE_TOKENS
        n = int(body.get("n") or 1)  # (every choice is billed)
        usd = (inp * PRICE_IN + out * n * PRICE_OUT) / 1e6 + (ONLINE_FEE if self.scenario.startswith("online") else 0)
        with self.lock:
            self.cost += usd
        said = 1 if self.scenario in ("small-input", "small-pdf") else inp  # (an upstream that under-reports what it read)
        reply = Reply(text=WORD * (out // 10), usage=(said, out * n), cost=usd if self.scenario == "online" else None)
        if self.scenario == "mid-fail":
            return StreamError(after_chunks=out // 10, then=reply)
        return reply

    def render_chunks(self, reply: Reply, rec: Any) -> list[bytes]:
        if self.scenario in ("no-usage", "mid-fail", "n3-no-usage"):
            rec.body = {k: v for k, v in rec.body.items() if k != "stream_options"}
        return super().render_chunks(reply, rec)


def config(port: int, tmp: Path, up: str, url: str, prefix: str, usd: float, model: str = "big-model") -> str:
    return f"""
server: {{port: {port}, default_route: main}}
ledger: {{path: {tmp / f'ledger-{port}.db'}}}
providers:
  cloud: {{kind: openai, base_url: "{up}/v1", locality: remote, timeouts: {{connect: 5, read: 60}}}}
models:
  frontier: {{provider: cloud, model: {model}, price: {{input: {PRICE_IN}, output: {PRICE_OUT}}}}}
routes:
  main: {{policy: fallback, targets: [frontier], retries: 0}}
budgets:
  store: {{backend: redis, redis_url: "{url}", key_prefix: "{prefix}"}}
  limits:
    - {{name: shared, usd: {usd}, window: day}}
"""


async def clients(urls: list[str], m: int, per_client: int, scenario: str) -> dict[str, int]:
    hc = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=m, max_keepalive_connections=m), timeout=120)
    oas = [openai.AsyncOpenAI(base_url=u + "/v1", api_key="k", max_retries=0, http_client=hc) for u in urls]
    seen: dict[str, int] = {}
    pdf = packed_pdf(PDF_PAGES)

    async def one(i: int) -> None:
        oc = oas[i % len(oas)]
        for j in range(per_client):
            kw: dict[str, Any] = {} if scenario == "no-max" else {"max_tokens": 500}
            if scenario.startswith("n3"):
                kw["n"] = 3
            try:
                pad = " " + WORD * 1000 if scenario == "small-input" else ""  # (40,000 characters)
                content: Any = f"client {i} question {j}{pad}"
                if scenario == "small-pdf":
                    content = [{"type": "file", "file": {"filename": "a.pdf", "file_data": pdf}},
                               {"type": "text", "text": content}]
                s = await oc.chat.completions.create(model="main", stream=True, messages=[
                    {"role": "user", "content": content}], **kw)
                async for _ in s:
                    pass
                seen["answered"] = seen.get("answered", 0) + 1
            except openai.APIStatusError as e:
                seen[f"http {e.status_code}"] = seen.get(f"http {e.status_code}", 0) + 1
                if e.status_code == 429:
                    return
            except openai.APIError as e:  # the mid-stream error event
                seen[type(e).__name__] = seen.get(type(e).__name__, 0) + 1

    try:
        await asyncio.gather(*(one(i) for i in range(m)))
    finally:
        await hc.aclose()
    return seen


def run(args: argparse.Namespace, scenario: str, tmp: Path) -> tuple[float, dict[str, int]]:
    up = Upstream(scenario, args.long)
    up.start()
    prefix = f"tierwise-bench-overspend:{uuid.uuid4().hex[:10]}:"
    servers = []
    try:
        for _ in range(args.gateways):
            p = free_port()
            path = tmp / f"tw-{p}.yaml"
            model = "big-model:online" if scenario.startswith("online") else "big-model"
            path.write_text(config(p, tmp, up.url, args.redis, prefix, args.usd, model))
            servers.append(ServeProcess(path, p, tmp))
        seen = asyncio.run(clients([s.url for s in servers], args.clients, args.per_client, scenario))
        for _ in range(100):  # settlements land shortly after the answers
            st = httpx2.get(servers[0].url + "/v1/tierwise/budgets", timeout=10).json()
            if not st["reservations_in_flight"]:
                break
            time.sleep(0.1)
        seen["counted_usd_x1000"] = round(st["budgets"][0]["usd_used"] * 1000)
        return up.cost, seen
    finally:
        for s in servers:
            s.stop()
        up.stop()
        drop_redis_keys(args.redis, prefix)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=None, help="the tierwise source tree the gateways run (default: this one)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    ap.add_argument("--gateways", type=int, default=3)
    ap.add_argument("--clients", type=int, default=60)
    ap.add_argument("--per-client", type=int, default=15)
    ap.add_argument("--usd", type=float, default=1.0)
    ap.add_argument("--long", type=int, default=16000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scenarios", default="honest,no-max,no-usage,mid-fail")
    args = ap.parse_args()
    src = args.src or str(Path(__file__).resolve().parent.parent / "src")
    os.environ["PYTHONPATH"] = src
    sys.path.insert(0, src)
    print(f"src {src}; {args.gateways} gateways x {args.clients} streaming clients; budget ${args.usd:g}/day")
    for scenario in args.scenarios.split(","):
        spends = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as d:
                cost, seen = run(args, scenario, Path(d))
            spends.append(cost)
            print(f"  {scenario:9s} spent ${cost:.4f}  {dict(sorted(seen.items()))}", flush=True)
        print(f"{scenario:9s} limit ${args.usd:g}: real spend ${min(spends):.4f}..${max(spends):.4f}, "
              f"worst {max(spends) / args.usd:.2f}x the limit", flush=True)


if __name__ == "__main__":
    main()
