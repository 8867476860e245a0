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
    nice -n 5 .venv/bin/python bench/budgets_overhead.py --micro     # in process: admission + settlement only
    nice -n 5 .venv/bin/python bench/budgets_overhead.py --same-process memory --rounds 6
    nice -n 5 .venv/bin/python bench/budgets_overhead.py --same-process memory --cache --instructions 500

`--same-process STORE` runs one gateway with two identical routes, one covered by the budgets and
rate limits and one not, and alternates between them request by request (serial) and burst by
burst (50 clients): the comparison least disturbed by a loaded machine.

`--micro` times the seam itself in one process (no HTTP): CPU (process time) per request of
`admit` + `settle` for the same config, memory and Redis stores, requests one at a time and 50 at
once, against the cost of making the request's context alone (the part of a request that exists
without budgets). On a shared machine this is steadier than the HTTP figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway_overhead import Target, cpu_s, load, serve_tierwise, start_stub  # noqa: E402
from responses_overhead import check  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from tests.harness import drop_redis_keys  # noqa: E402

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
    d, n = (3, 400) if quick else (5, 1000)
    assert t.proc is not None
    cpu0 = cpu_s(t.proc.p.pid)
    out = {"serial_p50": load(t, "serial", n=n)["p50_ms"]}
    out["cpu_serial"] = (cpu_s(t.proc.p.pid) - cpu0) * 1e6 / n
    cpu0 = cpu_s(t.proc.p.pid)
    r = load(t, "closed", concurrency=50, duration=d)
    out["rps_c50"] = r["rps"]
    out["cpu_c50"] = (cpu_s(t.proc.p.pid) - cpu0) * 1e6 / max(1, r["requests"] + 50)
    out["errors_c50"] = r["errors"]
    return out


def same_process_config(stub_port: int, work: Path, store_name: str, cache: bool, prefix: str) -> object:
    """The config of the `--same-process` gateway: routes `main` (covered) and `plain` (not)."""
    store = "{backend: memory}" if store_name == "memory" else \
        f'{{backend: redis, redis_url: "{REDIS_URL}", key_prefix: "{prefix}"}}'
    section = spend_section(store).replace("window: month}", "window: month, routes: [main]}")
    section = section.replace("window: {rolling: 1h}}", "window: {rolling: 1h}, routes: [main]}")
    section = section.replace("tokens_per_minute: 1000000000000}", "tokens_per_minute: 1000000000000, routes: [main]}")
    section = section.replace("per: route, requests_per_minute: 100000000}", "per: route, requests_per_minute: 100000000, "
                              "routes: [main]}")

    backend = f", backend: redis, redis_url: '{REDIS_URL}', redis_prefix: '{prefix}cache:'" if store_name == "redis" else ""
    cache_section = f"cache: {{enabled: true, routes: {{main: {{sampled: true}}}}{backend}}}"

    def text(port: int) -> str:
        return f"""
server: {{port: {port}}}
ledger: {{path: {work / "ledger.db"}}}
providers:
  stub_remote: {{kind: openai, base_url: "http://127.0.0.1:{stub_port}/v1", locality: remote}}
models:
  ref: {{provider: stub_remote, model: stub-model, price: {{input: 3, output: 15}}}}
routes:
  main: {{policy: fallback, targets: [ref]}}
  plain: {{policy: fallback, targets: [ref]}}
{section if store_name != "none" else ""}
{cache_section if cache else ""}"""
    return text


def forget_redis_keys(prefix: str) -> None:
    drop_redis_keys(REDIS_URL, prefix)


def same_process(rounds: int, store_name: str, cache: bool = False, src: Path | None = None,
                 gc_probe: bool = False) -> None:
    """One gateway, two identical routes to the frontier model: `main` covered by the budgets and rate
    limits (and with `cache`, the exact answer cache: every request a new question, so every one a
    miss: key, lookup, store), `plain` by none. Serial requests alternate between them one by one, and
    50-client runs alternate in short bursts, so both share the process, its warm-up and the
    machine's load. Each burst also reads the gateway's CPU time: CPU per request per route. `src`: the
    package to serve (another checkout's src/, for a before/after). `gc_probe`: the gateway times its
    garbage collections (bench/gc_probe), each counted to the burst it started in."""
    import asyncio
    import http.client
    import os
    import signal
    import time

    from cache_overhead import closed

    stub = start_stub(0.0)
    work = Path(tempfile.mkdtemp(prefix="tierwise-budgets-same-"))
    prefix = f"tierwise-bench:{uuid.uuid4().hex[:10]}:"
    text = same_process_config(stub.port, work, store_name, cache, prefix)
    gc_log = work / "gc.json"
    probe = {"PYTHONPATH": f"{src or HERE.parent / 'src'}{os.pathsep}{HERE / 'gc_probe'}", "TW_GC_LOG": str(gc_log)}
    gw = serve_tierwise(work, text, src=src, name="tierwise-same", extra_env=probe if gc_probe else None)
    windows: list[tuple[str, float, float, float]] = []  # route, burst start and end (monotonic), requests
    serial: dict[str, list[float]] = {"main": [], "plain": []}
    rps: dict[str, list[float]] = {"main": [], "plain": []}
    cpu: dict[str, list[float]] = {"main": [], "plain": []}
    try:
        targets = {m: Target(m, "openai", f"http://127.0.0.1:{gw.port}", m, m, proc=gw) for m in ("main", "plain")}
        for t in targets.values():
            check(t)
        conn = http.client.HTTPConnection("127.0.0.1", gw.port)
        nonce = uuid.uuid4().hex[:8]
        for rnd in range(rounds):
            for i in range(1000):
                order = ("main", "plain") if i % 2 == 0 else ("plain", "main")
                for m in order:
                    b = json.dumps({"model": m, "messages": [{"role": "user", "content": f"Say hello. {nonce} {rnd} {i}"}]})
                    t0 = time.perf_counter()
                    conn.request("POST", "/v1/chat/completions", b.encode(), {"content-type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    serial[m].append((time.perf_counter() - t0) * 1000)
                    assert r.status == 200, r.status
            for m in (("main", "plain") if rnd % 2 == 0 else ("plain", "main")) * 2:  # two bursts each
                c0 = cpu_s(gw.p.pid)
                url = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
                t0, w0 = time.perf_counter(), time.monotonic()
                r_s = asyncio.run(closed(url, 50, 1.5, True, m))  # every request a new question
                cpu[m].append((cpu_s(gw.p.pid) - c0) * 1e6 / (r_s * (time.perf_counter() - t0)))
                rps[m].append(r_s)
                windows.append((m, w0, time.monotonic(), r_s * (time.perf_counter() - t0)))
            print(f"round {rnd + 1}: serial p50 main {statistics.median(serial['main']):.3f} plain "
                  f"{statistics.median(serial['plain']):.3f} ms; rps main {rps['main'][-1]:.0f} plain "
                  f"{rps['plain'][-1]:.0f}; CPU µs/req main {cpu['main'][-1]:.0f} plain {cpu['plain'][-1]:.0f}",
                  file=sys.stderr, flush=True)
        if gc_probe:
            os.kill(gw.p.pid, signal.SIGUSR2)
            for _ in range(50):
                time.sleep(0.1)
                if gc_log.exists():
                    break
    finally:
        gw.stop()
        stub.stop()
        if store_name == "redis":
            forget_redis_keys(prefix)
    if gc_probe:
        gc_report(json.loads(gc_log.read_text()), windows)
    ratios = [a / b for a, b in zip(rps["main"], rps["plain"], strict=True)]
    cpu_ratios = [b / a for a, b in zip(cpu["main"], cpu["plain"], strict=True)]
    label = (store_name if store_name != "none" else "nothing") + (
        f" + exact cache, {'redis' if store_name == 'redis' else 'memory'} (all misses)" if cache else "")
    print("| covered route has | serial p50 covered ms | uncovered ms | added p50 ms | rps c50 covered / uncovered "
          "(per burst pair) | median | gateway CPU µs/req covered / uncovered | CPU ratio uncovered/covered "
          "(median) |")
    print("|---|---:|---:|---:|---|---:|---|---:|")
    pm, pp = statistics.median(serial["main"]), statistics.median(serial["plain"])
    print(f"| {label} | {pm:.3f} | {pp:.3f} | {pm - pp:+.3f} | {', '.join(f'{x:.3f}' for x in ratios)} | "
          f"{statistics.median(ratios):.3f} | {statistics.median(cpu['main']):.0f} / "
          f"{statistics.median(cpu['plain']):.0f} | {statistics.median(cpu_ratios):.3f} |")
    print(f"\n{rounds} round(s) of 1,000 alternating serial pairs and 2 x 1.5 s bursts at c50 per route, "
          "every request a new question.")


def gc_report(log: dict, windows: list[tuple[str, float, float, float]]) -> None:
    """Garbage collection per route: each collection counted to the burst it started in."""
    per: dict[str, list[float]] = {}
    for route, t0, t1, n in windows:
        row = per.setdefault(route, [0.0, 0.0, 0.0, 0.0, 0.0])  # requests, seconds, gen 0, 1, 2 collections
        row[0] += n
        for start, gen, secs, _ in log["events"]:
            if t0 <= start < t1:
                row[1] += secs
                row[2 + gen] += 1
    print("| route | GC µs/req (wall, in bursts) | collections per 10,000 requests, gen 0 / 1 / 2 |")
    print("|---|---:|---|")
    for route, (n, secs, g0, g1, g2) in per.items():
        k = 10_000 / n
        print(f"| {route} | {secs * 1e6 / n:.1f} | {g0 * k:.1f} / {g1 * k:.1f} / {g2 * k:.1f} |")
    print(f"\nobjects the collector tracks at the end: {log['tracked']:,}\n")


def callgrind_window(pid: int, out_file: Path, send: Callable[[], None]) -> tuple[int, Path]:
    """The instructions (user space) that process `pid`, running under valgrind's callgrind with its
    output going to `out_file` and instrumentation on, executes while `send()` runs and in the half
    second after it (what the last request left to the loop: its ledger row), and the dump they are in."""
    import subprocess
    import time

    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
    before = set(out_file.parent.glob(f"{out_file.name}*"))
    send()
    time.sleep(0.5)
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    new: set[Path] = set()
    for _ in range(100):
        new = set(out_file.parent.glob(f"{out_file.name}*")) - before
        if new:
            break
        time.sleep(0.1)
    (dump,) = new
    total = 0
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            total = max(total, int(line.split()[1]))
    return total, dump


def instructions(n: int, store_name: str, cache: bool, concurrency: int = 1, fill: int = 0,
                 src: Path | None = None) -> dict[str, float]:
    """Instructions per request (valgrind callgrind, user space) of the `--same-process` gateway,
    route by route: unlike CPU time, a count the other processes on a shared machine do not change.
    The gateway runs under callgrind with counting off; after a warm-up of both routes, counting is
    switched on and each pass sends `n` one-at-a-time requests (every one a new question, the burst
    body of `--same-process`) to one route, then dumps and zeroes the count. Passes go main, plain,
    plain, main, so what drifts with time (the ledger growing, timers) falls on both routes alike.
    The kernel's share of a request (socket I/O) is not in the count. `concurrency` > 1 sends each
    pass (and the fill) from that many clients at once (aiohttp, like the bursts of `--same-process`);
    `fill` covered requests go first, uncounted, so the passes run with a cache and windows that full
    (steady state: dicts grown, collections of a big heap)."""
    import http.client
    import shutil
    import subprocess

    from cache_overhead import body

    if not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    stub = start_stub(0.0)
    work = Path(tempfile.mkdtemp(prefix="tierwise-budgets-cg-"))
    prefix = f"tierwise-bench:{uuid.uuid4().hex[:10]}:"
    out_file = work / "gw.cg"
    gw = serve_tierwise(work, same_process_config(stub.port, work, store_name, cache, prefix), src=src, name="tierwise-cg",
                        wrapper=("valgrind", "--tool=callgrind", "--instr-atstart=no",
                                 f"--callgrind-out-file={out_file}"))
    counts: dict[str, list[float]] = {"main": [], "plain": []}
    nonce = uuid.uuid4().hex[:8]
    try:
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)

        def send(route: str, k: int, tag: str) -> None:
            if concurrency > 1:
                send_concurrently(f"http://127.0.0.1:{gw.port}/v1/chat/completions", route, k, f"{nonce}-{tag}",
                                  concurrency)
                return
            for i in range(k):
                conn.request("POST", "/v1/chat/completions", body(f"{nonce}-{tag}-{i}", route),
                             {"content-type": "application/json"})
                r = conn.getresponse()
                r.read()
                assert r.status == 200, r.status

        for route in ("main", "plain"):
            send(route, 100, f"warm-{route}")
        if fill:
            send("main", fill, "fill")
        subprocess.run(["callgrind_control", "-i", "on", str(gw.p.pid)], capture_output=True, check=True)
        for p, route in enumerate(("main", "plain", "plain", "main")):
            total, _ = callgrind_window(gw.p.pid, out_file, lambda p=p, route=route: send(route, n, f"{p}-{route}"))
            counts[route].append(total / n)
            print(f"pass {p + 1} {route}: {total / n / 1000:.1f} k instructions / request", file=sys.stderr, flush=True)
    finally:
        gw.stop()
        stub.stop()
        if store_name == "redis":
            forget_redis_keys(prefix)
    main_k, plain_k = statistics.mean(counts["main"]), statistics.mean(counts["plain"])
    label = (store_name if store_name != "none" else "nothing") + (" + exact cache (all misses)" if cache else "")
    print("| covered route has | k instructions / request covered | uncovered | added | ratio covered / uncovered |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {label} | {main_k / 1000:.1f} | {plain_k / 1000:.1f} | {(main_k - plain_k) / 1000:+.1f} k | "
          f"{main_k / plain_k:.3f} |")
    how = "one-at-a-time" if concurrency == 1 else f"{concurrency}-at-a-time"
    print(f"\n{n} {how} requests per pass, 2 passes per route (callgrind, user space)"
          + (f", after {fill:,} covered requests to fill the cache and windows." if fill else "."))
    return {"main": main_k, "plain": plain_k}


def send_concurrently(url: str, route: str, k: int, tag: str, concurrency: int) -> None:
    """`k` requests (each a new question) from `concurrency` clients at once; every answer a 200."""
    import asyncio

    import aiohttp
    from cache_overhead import body

    async def run() -> None:
        todo = iter(range(k))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=900)) as s:
            async def client() -> None:
                for i in todo:
                    async with s.post(url, data=body(f"{tag}-{i}", route),
                                      headers={"content-type": "application/json"}) as r:
                        await r.read()
                        assert r.status == 200, r.status

            await asyncio.gather(*(client() for _ in range(concurrency)))

    asyncio.run(run())


def micro(rounds: int) -> None:
    """admit + settle in process: CPU µs per request, serial and 50 at once, memory and Redis."""
    import asyncio
    import time

    sys.path.insert(0, str(HERE.parent / "src"))
    from tierwise.config import parse_config
    from tierwise.gateway import Gateway
    from tierwise.wire import openai_chat

    prefix = f"tierwise-bench:{uuid.uuid4().hex[:10]}:"
    stores = {"memory": "{backend: memory}",
              "redis": f'{{backend: redis, redis_url: "{REDIS_URL}", key_prefix: "{prefix}"}}'}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
    req = openai_chat.decode_request(body, {"content-length": "90"})
    rows: dict[str, list[float]] = {}

    async def run(store: str, conc: int, n: int) -> tuple[float, float]:
        cfg = parse_config(config(1, Path(tempfile.gettempdir()), spend_section(store))(1))
        cfg.ledger.enabled = False
        gw = Gateway(cfg)
        spend = gw.spend

        async def one(i: int, r: int) -> None:
            ctx = gw.context("main", f"req_{r}_{i}", "openai", MODEL)
            await spend.admit(req, ctx, "main", None, None)
            spend.settle(ctx)

        try:
            for warm in range(200):
                await one(warm, -1)
            c0, t0 = time.process_time(), time.perf_counter()
            for k in range(0, n, conc):
                if conc == 1:
                    await one(0, k)
                else:
                    await asyncio.gather(*(one(i, k) for i in range(conc)))  # a task each: counted too
            if spend._pending:
                await asyncio.wait(list(spend._pending))
            cpu, wall = (time.process_time() - c0) / n * 1e6, (time.perf_counter() - t0) / n * 1e6
            c0 = time.process_time()
            for i in range(n):
                gw.context("main", f"ctx_{i}", "openai", MODEL)
            return cpu, (time.process_time() - c0) / n * 1e6 if conc == 1 else wall
        finally:
            await gw.close()

    try:
        for rnd in range(rounds):
            for name, store in (stores.items() if rnd % 2 == 0 else reversed(stores.items())):
                for conc in ((1,) if name == "memory" else (1, 50)):  # the memory store never waits
                    cpu, other = asyncio.run(run(store, conc, 2000 if name == "redis" else 20000))
                    rows.setdefault(f"{name} c{conc}", []).append(cpu)
                    if conc == 1:
                        rows.setdefault("context alone", []).append(other)
                    print(f"round {rnd + 1} {name} c{conc}: {cpu:.1f} µs CPU per request", file=sys.stderr, flush=True)
    finally:
        drop_redis_keys(REDIS_URL, prefix)
    print("| seam, in process | CPU µs per request (per round) | median |")
    print("|---|---|---:|")
    for k, xs in rows.items():
        print(f"| {k} | {', '.join(f'{x:.1f}' for x in xs)} | {statistics.median(xs):.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument("--micro", action="store_true")
    ap.add_argument("--cache", action="store_true", help="--same-process: the covered route also has the exact "
                    "cache (every request a miss)")
    ap.add_argument("--same-process", choices=["memory", "redis", "none"], default=None,
                    help="none: neither route is covered (an A/A run: the noise floor)")
    ap.add_argument("--instructions", type=int, metavar="N", default=0,
                    help="with --same-process: count instructions per request per route under valgrind callgrind, "
                    "N requests per pass")
    ap.add_argument("--concurrency", type=int, default=1, help="--instructions: clients at once")
    ap.add_argument("--fill", type=int, default=0, help="--instructions: covered requests sent (uncounted) "
                    "before the passes, so they run at steady state")
    ap.add_argument("--src", type=Path, default=None, help="--same-process/--instructions: serve the package in "
                    "this folder (another checkout's src/, for a before/after)")
    ap.add_argument("--gc-probe", action="store_true", help="--same-process: time the gateway's garbage "
                    "collections per route (bench/gc_probe)")
    a = ap.parse_args()
    if a.instructions:
        instructions(a.instructions, a.same_process or "memory", a.cache, a.concurrency, a.fill, a.src)
        return
    if a.same_process:
        same_process(a.rounds, a.same_process, a.cache, a.src, a.gc_probe)
        return
    if a.micro:
        micro(a.rounds)
        return
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
            drop_redis_keys(REDIS_URL, prefix)
    off = results["off"]
    print("| store | serial p50 ms | added p50 ms (per round) | median added | rps c50 | throughput vs off "
          "(per round) | median | CPU µs/req serial | CPU µs/req c50 | CPU c50 vs off | errors |")
    print("|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, rs in results.items():
        added = [r["serial_p50"] - o["serial_p50"] for r, o in zip(rs, off, strict=True)]
        ratio = [r["rps_c50"] / o["rps_c50"] for r, o in zip(rs, off, strict=True)]
        cpu = [r["cpu_c50"] / o["cpu_c50"] for r, o in zip(rs, off, strict=True)]
        print(f"| {name} | {statistics.median(r['serial_p50'] for r in rs):.3f} | "
              f"{', '.join(f'{x:+.3f}' for x in added)} | {statistics.median(added):+.3f} | "
              f"{statistics.median(r['rps_c50'] for r in rs):,.0f} | {', '.join(f'{x:.3f}' for x in ratio)} | "
              f"{statistics.median(ratio):.3f} | {statistics.median(r['cpu_serial'] for r in rs):,.0f} | "
              f"{statistics.median(r['cpu_c50'] for r in rs):,.0f} | {statistics.median(cpu):.3f} | "
              f"{sum(r['errors_c50'] for r in rs):.0f} |")
    print(f"\n{a.rounds} round(s){' (quick)' if a.quick else ''}; medians over rounds.")


if __name__ == "__main__":
    main()
