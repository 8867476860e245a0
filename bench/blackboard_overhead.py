"""What the blackboard costs the request path, side by side in one run (the A/B loop of
bench/observability_overhead.py): the same gateway with the blackboard off, with live statistics
kept (in process, and published to Redis), and with a `dynamic` route reading them (in process,
and merged with the Redis board).

    nice -n 5 python bench/blackboard_overhead.py --rounds 4
    nice -n 5 python bench/blackboard_overhead.py --micro --rounds 15

Every variant serves requests for `main` from the same stub upstream: `off` through a `rules`
route that matches nothing (one decision, then the model), `dynamic` through a `dynamic` route
that stays local (one decision read from the statistics, then the model). The `+redis` variants
share one Redis key (a fresh prefix per run), so each sees the other as a peer replica; their
background exchange runs every 250 ms.

`--micro` times the parts in one process without sockets, variants interleaved round by round
(CPU time, minimum and median over rounds): a deployment call's statistics (`begin` + `ok`), a
`dynamic` decision with this replica's statistics only and merged with 8 peer replicas, the
whole `rules` and `dynamic` routes (decision, and the `fall_back` wrapper) in front of a model
that answers at once, and one
background exchange with Redis (8 peers on the board), which runs every `publish_interval_ms`
off the request path.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from observability_overhead import ROUTES, compare  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
DYNAMIC = """routes:
  main:
    policy: dynamic
    local: m
    frontier: ref
    shift_when: {latency_p50_ms_above: 500, error_rate_above: 0.05}"""


def http(rounds: int, quick: bool) -> None:
    board = "blackboard: {enabled: true}"
    shared = f"blackboard: {{enabled: true, redis_url: '{REDIS_URL}', key_prefix: 'bench-{uuid.uuid4().hex[:8]}:'}}"
    variants = {"off": "", "off-again": "", "stats": board, "stats+redis": shared, "dynamic": board,
                "dynamic+redis": shared}
    routes = {k: (DYNAMIC if k.startswith("dynamic") else ROUTES) for k in variants}
    compare(variants, rounds, quick, model="main", routes=routes)


def micro(rounds: int, n: int = 20000) -> None:
    sys.path.insert(0, str(HERE.parent / "src"))
    sys.path.insert(0, str(HERE.parent))
    from tests.harness import make_config, two_tier_config
    from tierwise.canonical import Message, Request, Response, TextBlock
    from tierwise.dispatch.blackboard import Blackboard
    from tierwise.dispatch.blackboard_settings import BlackboardConfig
    from tierwise.providers.live_stats import LiveStats
    from tierwise.server.build import build_gateway

    tmp = Path(tempfile.mkdtemp(prefix="bench-board-"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    route = {"auto": {"policy": "dynamic", "local": "local", "frontier": "frontier",
                      "shift_when": {"latency_p50_ms_above": 500, "error_rate_above": 0.05}},
             "main": {"policy": "rules", "rules": [{"match": {"model": "*sonnet*"}, "target": "frontier"}],
                      "default": "local"}}

    def gateway(bb: dict[str, Any]) -> Any:
        return build_gateway(make_config(two_tier_config("http://127.0.0.1:1", "http://127.0.0.1:2", routes=route,
                                                         ledger={"enabled": False}, blackboard=bb), tmp))

    async def run() -> None:
        alone = gateway({})
        shared = gateway({"redis_url": REDIS_URL, "key_prefix": prefix})
        peers = []
        for i in range(8):  # eight other replicas on the board, each with calls to both models
            st = {m: LiveStats() for m in ("local", "frontier")}
            for s in st.values():
                for k in range(20):
                    s.ok(100.0 + k, 50.0)
            peers.append(Blackboard(BlackboardConfig(replica_id=f"peer-{i}", key_prefix=prefix), st, REDIS_URL))
        for p in peers:
            await p.start()
        await shared.start()
        assert shared.blackboard.replicas == 8, shared.blackboard.replicas
        stats = LiveStats()

        def record() -> None:
            stats.begin()
            stats.ok(12.5, 3.0)

        routes = {"alone": alone.resolve("auto"), "8 peers": shared.resolve("auto")}
        ctxs = {k: g.context("auto", "req_bench", "openai", "auto") for k, g in (("alone", alone), ("8 peers", shared))}
        for g in (alone, shared):
            for _ in range(20):
                g.deployments["local"].stats.ok(20.0, 5.0)
        rules = alone.resolve("main")
        req = Request(model="main", messages=[Message(role="user", content=[TextBlock("hi")])])
        rctx = alone.context("main", "req_bench", "openai", "main")
        answer = Response(id="r", model="m", content=[TextBlock("ok")])

        async def instant(req: Any, ctx: Any, check: Any = None) -> Any:
            return answer

        alone.deployments["local"].complete = instant  # a model that answers at once: only the route's cost
        whole = {"whole `rules` route to an instant model": (rules, rctx),
                 "whole `dynamic` route to an instant model": (routes["alone"], ctxs["alone"])}
        res: dict[str, list[float]] = {"rules decision (the `off` route, for scale)": [],
                                       **{k: [] for k in whole},
                                       "statistics of one call (begin + ok)": [], "dynamic decision, alone": [],
                                       "dynamic decision, merged with 8 peers": [],
                                       "background exchange with Redis (8 peers), per exchange": []}
        for r in range(rounds):
            names = list(res) if r % 2 == 0 else list(reversed(res))
            for name in names:
                if name in whole:
                    target, ctx = whole[name]
                    steps = ctx.trace.steps
                    t0 = time.thread_time()
                    for _ in range(n):
                        await target.complete(req, ctx)
                        steps.clear()
                    res[name].append((time.thread_time() - t0) / n * 1e6)
                elif name.startswith("rules"):
                    steps = rctx.trace.steps
                    t0 = time.thread_time()
                    for _ in range(n):
                        rules.choose(req, rctx)
                        steps.clear()
                    res[name].append((time.thread_time() - t0) / n * 1e6)
                elif name.startswith("statistics"):
                    t0 = time.thread_time()
                    for _ in range(n):
                        record()
                    res[name].append((time.thread_time() - t0) / n * 1e6)
                elif name.startswith("dynamic"):
                    key = "alone" if name.endswith("alone") else "8 peers"
                    d, ctx = routes[key], ctxs[key]
                    steps = ctx.trace.steps
                    t0 = time.thread_time()
                    for _ in range(n):
                        d.choose(ctx)
                        steps.clear()
                    res[name].append((time.thread_time() - t0) / n * 1e6)
                else:
                    k = 200
                    t0 = time.thread_time()
                    for _ in range(k):
                        await shared.blackboard.exchange()
                    res[name].append((time.thread_time() - t0) / k * 1e6)
        for p in peers:
            await p.close()
        await shared.close()
        await alone.close()
        print(f"\n{rounds} rounds, interleaved; CPU µs (min / median over rounds)\n")
        print("| part | where | µs |")
        print("|---|---|---|")
        for name, v in res.items():
            where = "background, every publish_interval_ms" if "exchange" in name else "request path"
            print(f"| {name} | {where} | {min(v):.2f} / {statistics.median(v):.2f} |")

    asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--micro", action="store_true", help="in-process cost of each part (no sockets)")
    a = ap.parse_args()
    if a.micro:
        micro(a.rounds)
    else:
        http(a.rounds, a.quick)


if __name__ == "__main__":
    main()
