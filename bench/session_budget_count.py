"""Bytecodes of one budget admission for a request covered by a `per: session` budget, on a gateway with keys
(the path session 21's tenant-isolation fix changed: a session's bucket is the naming key's own). A count, so
the machine's load does not move it. In process, no HTTP: the gateway's `spend.admit` for `--requests`
requests of one key, a new session every `--new-every` requests, after `--warm` uncounted ones; settled
at once, as a finished request would be. A/B: run it once per tree.

    PYTHONPATH=src .venv/bin/python bench/session_budget_count.py
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/session_budget_count.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile

from bytecodes import counted  # bench/bytecodes.py (the script's folder is on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--new-every", type=int, default=10)
    a = ap.parse_args()
    os.environ["BENCH_KEY"] = "bench-key-value"
    from tierwise.canonical import Message, Request, TextBlock
    from tierwise.config import parse_config
    from tierwise.server.build import build_gateway
    from tierwise.server.key_scopes import KeyRing

    with tempfile.TemporaryDirectory() as d:
        cfg = parse_config(f"""
server: {{api_keys_env: [BENCH_KEY]}}
ledger: {{path: {d}/ledger.db}}
providers: {{up: {{kind: anthropic, base_url: "http://127.0.0.1:9", locality: remote}}}}
models: {{big: {{provider: up, model: m, price: {{input: 3, output: 15}}}}}}
routes: {{main: [big]}}
budgets: {{limits: [{{name: per-session, per: session, usd: 1000000}}]}}
""")
        gw = build_gateway(cfg)
        key = KeyRing(cfg.server).check({"authorization": "Bearer bench-key-value"})
        target = gw.resolve("main")

        async def one(i: int) -> None:
            req = Request(model="main", messages=[Message("user", [TextBlock("hello")])], max_tokens=100,
                          headers={"x-tierwise-session": f"s-{i // a.new_every}", "content-length": "120"})
            ctx = gw.context("main", f"req-{i}", "openai", "main")
            await gw.spend.admit(req, ctx, "main", target, key)
            gw.spend.settle(ctx)  # (no step on the trace: settles at the reservation)

        async def run() -> int:
            for i in range(a.warm):
                await one(i)
            with counted() as n:
                for i in range(a.warm, a.warm + a.requests):
                    await one(i)
            return n[0]

        ops = asyncio.run(run())
    print(f"bytecodes per admission (per: session budget, a new session every {a.new_every}): "
          f"{ops / a.requests:,.1f}")


if __name__ == "__main__":
    main()
