"""`POST /v1/embeddings` against a budget: what the upstream billed against what the budget counted (session 29).

One in-process gateway, a remote embeddings model at `--price` USD per million input tokens, one `per: key` budget
of `--usd` per day (memory store, or `--store redis`: db 9 under a prefix of the run's own, deleted after);
`--clients` official openai SDK clients embed `--inputs` texts of ~1,000 tokens per call, each until the budget
refuses it three times or after `--limit` calls. "Paid": the prompt tokens the OpenAI double reported, at the price.

    PYTHONPATH=src .venv/bin/python bench/embeddings_budget.py [--src OTHER/src] [--store redis]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/9"
KEY = "sk-gw-embed-bench-aaaaaaaaaaaaaaaa"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--store", choices=["memory", "redis"], default="memory")
    ap.add_argument("--usd", type=float, default=1.0)
    ap.add_argument("--price", type=float, default=0.13, help="USD per million input tokens")
    ap.add_argument("--inputs", type=int, default=100, help="texts per call")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--limit", type=int, default=50)
    a = ap.parse_args()
    sys.path.insert(0, a.src)
    sys.path.insert(1, str(ROOT))
    import openai

    from tests.doubles import OpenAIDouble
    from tests.doubles.base import estimate_tokens
    from tests.doubles.openai_double import _embedding_inputs
    from tests.gateway.conftest import oai
    from tests.harness import GatewayServer, drop_redis_keys, make_config

    os.environ["TW_EMB_BENCH"] = KEY
    up = OpenAIDouble()
    up.start()
    prefix = f"tw-bench-emb:{uuid.uuid4().hex[:10]}:"
    budgets: dict = {"limits": [{"name": "per-key", "per": "key", "usd": a.usd}]}
    if a.store == "redis":
        budgets["store"] = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    cfg = {
        "server": {"default_route": "emb", "api_keys_env": ["TW_EMB_BENCH"]},
        "ledger": {"enabled": False},
        "providers": {"up": {"kind": "openai", "base_url": up.url + "/v1", "locality": "remote"}},
        "models": {"embedder": {"provider": "up", "model": "text-embedding-3-large",
                                "price": {"input": a.price, "output": 0}}},
        "routes": {"emb": {"policy": "fallback", "targets": ["embedder"], "retries": 0}},
        "budgets": budgets,
    }
    g = GatewayServer(make_config(cfg, Path(tempfile.mkdtemp()))).start()
    text = "a sentence of some length to embed " * 115  # ~1,000 tokens by the double's count
    try:
        client = oai(g, api_key=KEY)

        def one(i: int) -> tuple[int, int]:
            ok = refused = 0
            for n in range(a.limit):
                try:
                    client.embeddings.create(model="emb", input=[f"{i}-{n} {text}"] * a.inputs)
                    ok += 1
                except openai.RateLimitError:
                    refused += 1
                    if refused >= 3:
                        break
            return ok, refused

        with ThreadPoolExecutor(a.clients) as pool:
            out = list(pool.map(one, range(a.clients)))
        paid = sum(estimate_tokens(t) for r in up.requests if r.path.endswith("/embeddings")
                   for t in _embedding_inputs(r.body.get("input"))) * a.price / 1e6
        st = asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)
        counted = sum(b["usd_used"] for b in st["budgets"] if b["budget"] == "per-key")
        print(f"[{a.store}] budget ${a.usd} per key: {sum(o for o, _ in out)} calls answered, "
              f"{sum(r for _, r in out)} refused; paid ${paid:.4f} ({paid / a.usd:.2f}x), counted ${counted:.4f}")
    finally:
        g.stop()
        up.stop()
        if a.store == "redis":
            drop_redis_keys(REDIS_URL, prefix)


if __name__ == "__main__":
    main()
