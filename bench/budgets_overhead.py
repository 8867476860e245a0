"""What budgets and rate limits cost a request, A/B in one run: the same gateway config with them off,
on with the in-process store (single node), and on with the Redis store.

Three `tierwise serve` processes of this checkout on one stub upstream (bench/stub_upstream.py),
bench/loadgen.py in its own process. Requests go through the `main` route to its frontier model
(priced, `locality: remote`), so every request is admitted (a reservation in two budgets and a
count in two rate limits) and settled. Per round and target: serial p50 latency (one request at a
time), then requests/s and gateway CPU per request with 50 concurrent clients; the targets run one
after the other, reversed on odd rounds, so the runs compared sit next to each other in time.
Medians over rounds; added p50 = on - off of the same round, throughput = on / off of the same round.

    nice -n 5 .venv/bin/python bench/budgets_overhead.py --rounds 4
    nice -n 5 .venv/bin/python bench/budgets_overhead.py --quick --rounds 2 --no-redis
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway_overhead import Target, cpu_s, load, serve_tierwise, start_stub  # noqa: E402
from responses_overhead import check  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "x-sonnet"  # the rules route's frontier branch


def config(stub_port: int, workdir: Path, spend: str) -> object:
    def text(port: int) -> str:
        return f"""
server: {{port: {port}, default_route: main}}
ledger: {{path: {workdir / "ledger.db"}}}
providers:
  stub: {{kind: openai, base_url: "http://127.0.0.1:{stub_port}/v1", locality: local}}
  stub_remote: {{kind: openai, base_url: "http://127.0.0.1:{stub_port}/v1", locality: remote}}
models:
  m: {{provider: stub, model: stub-model}}
  ref: {{provider: stub_remote, model: stub-model, price: {{input: 3, output: 15}}}}
routes:
  main:
    policy: rules
    rules:
      - {{match: {{model: "*sonnet*"}}, target: ref}}
    default: m
{spend}"""
    return text


def spend_section(store: str) -> str:
    return f"""budgets:
  store: {store}
  limits:
    - {{name: all, usd: 1000000000, window: month}}
    - {{name: per-key, per: key, tokens: 1000000000000, window: {{rolling: 1h}}}}
rate_limits:
  limits:
    - {{name: per-key, per: key, requests_per_minute: 100000000, tokens_per_minute: 1000000000000}}
    - {{name: per-route, per: route, requests_per_minute: 100000000}}
"""


def measure(t: Target, quick: bool) -> dict[str, float]:
    d, n = (3, 400) if quick else (6, 1500)
    out = {"serial_p50": load(t, "serial", n=n)["p50_ms"]}
    assert t.proc is not None
    cpu0 = cpu_s(t.proc.p.pid)
    r = load(t, "closed", concurrency=50, duration=d)
    out["rps_c50"] = r["rps"]
    out["cpu_c50"] = (cpu_s(t.proc.p.pid) - cpu0) * 1e6 / max(1, r["requests"] + 50)
    out["errors_c50"] = r["errors"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-redis", action="store_true")
    a = ap.parse_args()
    stub = start_stub(0.0)
    work = Path(tempfile.mkdtemp(prefix="tierwise-budgets-bench-"))
    prefix = f"tierwise-bench:{uuid.uuid4().hex[:10]}:"
    variants = [("off", ""), ("memory", spend_section("{backend: memory}"))]
    if not a.no_redis:
        variants.append(("redis", spend_section(f'{{backend: redis, redis_url: "{REDIS_URL}", key_prefix: "{prefix}"}}')))
    procs = []
    try:
        targets = []
        for name, section in variants:
            p = serve_tierwise(work / name, config(stub.port, work / name, section), name=f"tierwise-{name}")
            procs.append(p)
            targets.append(Target(name, "openai", f"http://127.0.0.1:{p.port}", MODEL, name, proc=p))
        for t in targets:
            check(t)
        results: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
        for rnd in range(a.rounds):
            for t in (targets if rnd % 2 == 0 else list(reversed(targets))):
                r = measure(t, a.quick)
                results[t.name].append(r)
                print(f"round {rnd + 1} {t.name}: {json.dumps({k: round(v, 3) for k, v in r.items()})}",
                      file=sys.stderr, flush=True)
    finally:
        for p in procs:
            p.stop()
        stub.stop()
        if not a.no_redis:
            import redis

            r = redis.Redis.from_url(REDIS_URL)
            keys = list(r.scan_iter(match=prefix + "*", count=1000))
            if keys:
                r.delete(*keys)
    off = results["off"]
    print("| store | serial p50 ms | added p50 ms (per round) | median added | rps c50 | throughput vs off "
          "(per round) | median | CPU µs/req c50 | errors |")
    print("|---|---:|---|---:|---:|---|---:|---:|---:|")
    for name, rs in results.items():
        added = [r["serial_p50"] - o["serial_p50"] for r, o in zip(rs, off, strict=True)]
        ratio = [r["rps_c50"] / o["rps_c50"] for r, o in zip(rs, off, strict=True)]
        print(f"| {name} | {statistics.median(r['serial_p50'] for r in rs):.3f} | "
              f"{', '.join(f'{x:+.3f}' for x in added)} | {statistics.median(added):+.3f} | "
              f"{statistics.median(r['rps_c50'] for r in rs):,.0f} | {', '.join(f'{x:.3f}' for x in ratio)} | "
              f"{statistics.median(ratio):.3f} | {statistics.median(r['cpu_c50'] for r in rs):,.0f} | "
              f"{sum(r['errors_c50'] for r in rs):.0f} |")
    print(f"\n{a.rounds} round(s){' (quick)' if a.quick else ''}; medians over rounds.")


if __name__ == "__main__":
    main()
