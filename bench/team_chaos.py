"""A team's deployment under chaos: what the budget counted, what the upstream was paid, what clients saw.

Real processes on loopback: a redis-server of the run's own (AOF, `appendfsync everysec` as
docs/distributed.md advises) behind a TCP proxy that can hold or delay bytes; two `tierwise serve` replicas
and a third with `--workers 2`, each with a ledger of its own, sharing one Redis budget store (a `team`
budget and a `per: key` budget for each of two gateway keys); an Anthropic-format upstream double that
knows what every answer cost (40 tokens in, 400 out at $3/$15 per million: $0.00612). `--clients` SDK
clients (the official openai and anthropic SDKs, alternately; every other request a stream) go round robin
across the replicas, each until the budget refuses it three times in a row; a 503 from the budget store is
waited out (0.5 s) and asked again. One chaos action runs once the upstream has answered `--at` requests:

- none:        nothing (the baseline bound);
- restart:     SHUTDOWN of Redis (a graceful restart, AOF fsynced) and start again at once;
- crash:       SIGKILL of Redis and start again (up to a second of AOF writes lost);
- empty:       the same with Redis run without persistence: it comes back empty (session 29);
- stop30:      Redis shut down for `--outage` seconds (30), then started;
- freeze:      the proxy holds every byte for `--outage` seconds (a paused Redis, a partition);
- slow:        the proxy delays every chunk by `--delay` seconds for `--outage` seconds;
- oom:         another application fills Redis past `maxmemory` (noeviction) for `--outage` seconds;
- evict:       the same with `allkeys-lru` (what the budget forgets);
- kill:        SIGKILL of one replica (its streams in flight cut), started again after 3 s;
- skew:        the third replica's clock runs `--skew` seconds ahead from the start (sitecustomize);
- deploy:      every replica stopped (SIGTERM), Redis (no AOF) restarted empty, every replica started again;
- kills:       SIGKILL of a replica (a, b, c in turn, c's workers with it) `--kills` times, every `--every` upstream
               answers from `--at`, each started again after 1 s (the store keeps its data; session 34);
- killdeploy:  every replica SIGKILLed (workers too), Redis (no AOF) restarted empty, every replica started again
               (what a gateway settled after its last save to its ledger file is lost; session 34).

Reported: the caps, the real spend, what the budget counted, reservations in flight, the clients' outcomes
by status and error type (a 500 or an error outside the client's schema is a failure), /health and
/metrics of each replica during and after, and whether every request answered 200 is in a ledger.

    PYTHONPATH=src .venv/bin/python bench/team_chaos.py --scenario none|restart|crash|empty|stop30|freeze|slow|oom|evict|kill|skew|deploy|kills|killdeploy
        [--dead release] [--kills 6 --every 40] [--on-store-error fail_open]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.budgets.test_store_outage import FreezableProxy  # noqa: E402
from tests.doubles import AnthropicDouble, Delay, Reply  # noqa: E402
from tests.harness import OwnRedis, ServeProcess, free_port  # noqa: E402

COST = (40 * 3 + 400 * 15) / 1e6
KEYS = {"ALICE_KEY": "sk-alice-chaos-1", "BOB_KEY": "sk-bob-chaos-2", "ADMIN_KEY": "sk-admin-chaos-3"}


def config(port: int, tmp: Path, up: str, redis_url: str, usd: float, per_key: float, ttl: int,
           dead: str = "release", on_error: str = "fail_closed") -> str:
    return f"""
server:
  port: {port}
  default_route: main
  api_keys_env: [{{env: ALICE_KEY, name: alice}}, {{env: BOB_KEY, name: bob}}]
  admin_keys_env: [ADMIN_KEY]
ledger: {{path: {tmp / f'ledger-{port}.db'}}}
providers:
  cloud: {{kind: anthropic, base_url: "{up}", locality: remote, timeouts: {{connect: 5, read: 60}}}}
models:
  frontier: {{provider: cloud, model: big-model, price: {{input: 3, output: 15}}}}
routes:
  main: {{policy: fallback, targets: [frontier], retries: 0}}
budgets:
  store: {{backend: redis, redis_url: "{redis_url}", key_prefix: "chaos:spend:", on_store_error: {on_error}}}
  reservation_ttl: {ttl}
  dead_reservations: {dead}
  limits:
    - {{name: team, usd: {usd}, window: day}}
    - {{name: per-person, per: key, usd: {per_key}, window: day}}
observability:
  metrics: {{enabled: true}}
"""


def skew_dir(tmp: Path, seconds: float) -> Path:
    """A sitecustomize that moves this process's wall clock `seconds` ahead (time.time and its relatives)."""
    d = tmp / "skew"
    d.mkdir(exist_ok=True)
    (d / "sitecustomize.py").write_text(
        "import time as _t\n"
        f"_o = _t.time; _on = _t.time_ns; _S = {seconds!r}\n"
        "_t.time = lambda: _o() + _S\n"
        "_t.time_ns = lambda: _on() + int(_S * 1e9)\n")
    return d


class Replica:
    def __init__(self, name: str, tmp: Path, text: str, port: int, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.name, self.tmp, self.port, self.args, self.env = name, tmp, port, args, env or {}
        self.cfg = tmp / f"tw-{name}.yaml"
        self.cfg.write_text(text)
        self.url = f"http://127.0.0.1:{port}"
        self.start()

    def start(self) -> None:
        saved = list(sys.path)
        sys.path[:0] = self.env.get("PYTHONPATH", "").split(os.pathsep)  # ServeProcess passes sys.path on
        try:
            self.proc = ServeProcess(self.cfg, self.port, self.tmp, ("--port", str(self.port), *self.args))
        finally:
            sys.path[:] = saved

    def kill(self) -> None:
        """SIGKILL of the process and its workers (`--workers N`: a worker outliving its parent keeps serving)."""
        pids, todo = [], [self.proc.p.pid]
        while todo:  # (the tree, from /proc: children first found, all killed at once below)
            pid = todo.pop()
            pids.append(pid)
            for child in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = child.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    todo.append(int(child.parent.name))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.p.wait()
        self.proc.log.close()

    @property
    def ledger(self) -> Path:
        return self.tmp / f"ledger-{self.port}.db"


class Outcomes:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.bad: list[str] = []
        self.answered_ids: dict[str, list[str]] = {}  # replica url -> request ids answered 200


async def client(i: int, urls: list[str], out: Outcomes, stop: asyncio.Event, limit: int) -> None:
    key = KEYS["ALICE_KEY"] if i % 2 else KEYS["BOB_KEY"]
    refused = 0
    j = 0
    hc = httpx2.AsyncClient(timeout=120)
    oa = [openai.AsyncOpenAI(base_url=u + "/v1", api_key=key, max_retries=0, http_client=hc) for u in urls]
    an = [anthropic.AsyncAnthropic(base_url=u, api_key=key, max_retries=0, http_client=hc) for u in urls]
    try:
        while refused < 3 and j < limit and not stop.is_set():
            g = (i + j) % len(urls)
            api = "openai" if (i + j // 2) % 2 else "anthropic"
            stream = bool(j % 2)
            msg = [{"role": "user", "content": f"client {i} turn {j}"}]
            j += 1
            try:
                if api == "openai":
                    if stream:
                        raw = await oa[g].chat.completions.with_raw_response.create(
                            model="main", max_tokens=500, messages=msg, stream=True)
                        async for _ in raw.parse():
                            pass
                    else:
                        raw = await oa[g].chat.completions.with_raw_response.create(
                            model="main", max_tokens=500, messages=msg)
                        raw.parse()
                else:
                    if stream:
                        raw = await an[g].messages.with_raw_response.create(
                            model="main", max_tokens=500, messages=msg, stream=True)
                        async for _ in await raw.parse():
                            pass
                    else:
                        raw = await an[g].messages.with_raw_response.create(model="main", max_tokens=500, messages=msg)
                        await raw.parse()
                out.seen["200"] += 1
                out.answered_ids.setdefault(urls[g], []).append(raw.headers.get("x-tierwise-request-id", ""))
                refused = 0
            except (openai.APIStatusError, anthropic.APIStatusError) as e:
                body = e.body if isinstance(e.body, dict) else {}
                kind = (body.get("error") or {}).get("type") if api == "anthropic" else body.get("type")
                out.seen[f"{e.status_code} {api} {kind}"] += 1
                if e.status_code >= 500 and e.status_code != 503 or kind is None:
                    out.bad.append(f"{e.status_code} {api} {str(e.body)[:200]}")
                if e.status_code == 429:
                    refused += 1
                else:
                    await asyncio.sleep(0.5)
            except (openai.APIConnectionError, anthropic.APIConnectionError, httpx2.TransportError) as e:
                out.seen[f"connection {type(e).__name__}"] += 1
                await asyncio.sleep(0.5)
            except (openai.APIError, anthropic.APIError) as e:  # an error event inside a stream
                out.seen[f"stream-error {api} {type(e).__name__}"] += 1
                await asyncio.sleep(0.5)
    finally:
        await hc.aclose()


def scrape(r: Replica) -> dict[str, Any]:
    h = {"authorization": f"Bearer {KEYS['ALICE_KEY']}"}
    try:
        health = httpx2.get(r.url + "/health", headers=h, timeout=5).json()
        text = httpx2.get(r.url + "/metrics", headers={"authorization": f"Bearer {KEYS['ADMIN_KEY']}"},
                          timeout=5).text
    except httpx2.HTTPError as e:
        return {"error": type(e).__name__}
    lines = [ln for ln in text.splitlines() if ln.startswith(("tierwise_budget", "tierwise_requests_total"))
             and ("budget" in ln or "5xx" in ln or "overloaded" in ln)]
    return {"health": health.get("status"), "health_keys": sorted(health), "budget_store": health.get("budget_store"),
            "metrics": lines[:12]}


def budget_status(url: str, prefix: str = "chaos:spend:") -> dict[str, Any]:
    """The budgets as an admin key reads them (`GET /v1/tierwise/budgets`, what `tierwise budgets` shows)."""
    try:
        r = httpx2.get(url + "/v1/tierwise/budgets", headers={"authorization": f"Bearer {KEYS['ADMIN_KEY']}"},
                       timeout=30)
        return dict(r.json())
    except (httpx2.HTTPError, ValueError) as e:
        return {"error": type(e).__name__}


def ledger_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("select request_id from requests")}
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="none")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--usd", type=float, default=2.0)
    ap.add_argument("--per-key", type=float, default=1.5)
    ap.add_argument("--ttl", type=int, default=20)
    ap.add_argument("--at", type=int, default=60, help="upstream answers before the chaos action")
    ap.add_argument("--outage", type=float, default=30.0)
    ap.add_argument("--delay", type=float, default=0.3)
    ap.add_argument("--skew", type=float, default=120.0)
    ap.add_argument("--upstream-delay", type=float, default=0.5)
    ap.add_argument("--limit", type=int, default=60, help="requests per client at most")
    ap.add_argument("--kills", type=int, default=6, help="kills: how many SIGKILLs")
    ap.add_argument("--every", type=int, default=40, help="kills: upstream answers between two")
    ap.add_argument("--dead", default="count", help="budgets.dead_reservations: count (the default) | release")
    ap.add_argument("--on-store-error", default="fail_closed", help="budgets.store.on_store_error")
    args = ap.parse_args()
    os.environ.update(KEYS)
    tmp = Path(tempfile.mkdtemp(prefix="team-chaos-"))
    (tmp / "redis").mkdir()
    rds = OwnRedis(tmp / "redis", fsync="everysec", appendonly=args.scenario not in ("empty", "deploy", "killdeploy"))
    rds.start()
    proxy = FreezableProxy(rds.port)
    up = AnthropicDouble()
    up.default = Delay(args.upstream_delay, Reply(text="word " * 400, usage=(40, 400)))
    up.start()
    redis_url = f"redis://127.0.0.1:{proxy.port}/0"
    replicas: list[Replica] = []
    report: dict[str, Any] = {"scenario": args.scenario, "caps": {"team": args.usd, "per_key": args.per_key}}
    try:
        for name, extra, env in (("a", (), {}), ("b", (), {}), ("c", ("--workers", "2"), {})):
            if args.scenario == "skew" and name == "c":
                env = {"PYTHONPATH": str(skew_dir(tmp, args.skew))}
            p = free_port()
            replicas.append(Replica(name, tmp, config(p, tmp, up.url, redis_url, args.usd, args.per_key, args.ttl,
                                           args.dead, args.on_store_error),
                                    p, extra, env))
        out = Outcomes()
        during: dict[str, Any] = {}

        def chaos() -> None:
            if not up.wait_until(lambda: len(up.requests) >= args.at, timeout=300):
                return
            t0 = time.monotonic()
            s = args.scenario
            if s == "restart":
                rds.shutdown()
                rds.start()
            elif s in ("crash", "empty"):
                rds.stop()
                rds.start()
            elif s == "stop30":
                rds.shutdown()
                time.sleep(args.outage / 2)
                during.update({r.name: scrape(r) for r in replicas})
                time.sleep(args.outage / 2)
                rds.start()
            elif s == "freeze":
                proxy.frozen.set()
                time.sleep(args.outage / 2)
                during.update({r.name: scrape(r) for r in replicas})
                time.sleep(args.outage / 2)
                proxy.frozen.clear()
            elif s == "slow":
                proxy.delay = args.delay
                time.sleep(args.outage / 2)
                during.update({r.name: scrape(r) for r in replicas})
                time.sleep(args.outage / 2)
                proxy.delay = 0.0
            elif s in ("oom", "evict"):
                # another application fills the server past maxmemory: noeviction refuses writes (oom), an LRU
                # policy evicts keys (evict); after `--outage` seconds the operator lifts the limit
                import redis

                r = redis.Redis(port=rds.port)
                used = int(r.info("memory")["used_memory"])
                r.config_set("maxmemory-policy", "noeviction" if s == "oom" else "allkeys-lru")
                r.config_set("maxmemory", str(used + 2_000_000))
                filler = b"x" * 10_000
                try:
                    for n in range(2_000):
                        r.set(f"other-app:{n}", filler)
                except redis.exceptions.ResponseError:
                    pass
                if s == "oom":  # past the limit for sure (client buffers counted at the start come and go)
                    r.config_set("maxmemory", str(int(r.info("memory")["used_memory"]) - 500_000))
                report["evicted_keys"] = r.info("stats")["evicted_keys"]
                time.sleep(args.outage / 2)
                during.update({r_.name: scrape(r_) for r_ in replicas})
                time.sleep(args.outage / 2)
                report["evicted_keys"] = r.info("stats")["evicted_keys"]
                r.config_set("maxmemory", "0")
                r.close()
            elif s == "deploy":  # the whole deployment restarted with a Redis without persistence (session 33)
                for r in replicas:
                    r.proc.stop()
                rds.stop()
                rds.start()
                for r in replicas:
                    r.start()
            elif s == "kills":
                during["killed"] = []
                for k in range(args.kills):
                    if k and not up.wait_until(lambda k=k: len(up.requests) >= args.at + k * args.every, timeout=300):
                        break
                    victim = replicas[k % len(replicas)]
                    victim.kill()
                    during["killed"].append([victim.name, len(up.requests)])
                    time.sleep(1)
                    victim.start()
            elif s == "killdeploy":
                for r in replicas:
                    r.kill()
                rds.stop()
                rds.start()
                for r in replicas:
                    r.start()
            elif s == "kill":
                victim = replicas[0]
                during["killed_answered_before"] = len(out.answered_ids.get(victim.url, []))
                victim.kill()
                time.sleep(3)
                victim.start()
            report["chaos_s"] = round(time.monotonic() - t0, 1)
            report["chaos_at_upstream_requests"] = len(up.requests)

        th = threading.Thread(target=chaos, daemon=True)
        th.start()

        async def load() -> None:
            stop = asyncio.Event()
            await asyncio.gather(*(client(i, [r.url for r in replicas], out, stop, args.limit)
                                   for i in range(args.clients)))

        t0 = time.monotonic()
        asyncio.run(load())
        report["load_s"] = round(time.monotonic() - t0, 1)
        th.join(timeout=120)
        # settlements land after the answers (and after an outage, once Redis answers): wait for them
        deadline = time.monotonic() + max(60, args.ttl * 2)
        while True:
            st = budget_status(replicas[1].url)
            if st.get("reservations_in_flight") == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        report["paid_usd"] = round(len(up.requests) * COST, 5)
        report["upstream_requests"] = len(up.requests)
        report["counted"] = {f"{b['budget']} {b.get('value')}".strip(): round(b["usd_used"], 5)
                             for b in st.get("budgets", [])}
        report["in_flight"] = st.get("reservations_in_flight", st.get("error"))
        report["overspend_team_usd"] = round(len(up.requests) * COST - args.usd, 5)
        report["clients"] = dict(out.seen)
        report["bad_errors"] = out.bad[:10]
        report["during"] = during
        time.sleep(1.5)
        report["after"] = {r.name: scrape(r) for r in replicas}
        for r in replicas:
            r.proc.stop()
        lost = {}
        for r in replicas:
            ids = set(out.answered_ids.get(r.url, []))
            lost[r.name] = len(ids - ledger_ids(r.ledger))
        report["answered_not_in_ledger"] = lost
        report["budgets_log_lines"] = sum(ln.count(b"tierwise.budgets") for f in tmp.glob("serve-*.log")
                                          for ln in [f.read_bytes()])
        print(json.dumps(report, indent=1, default=str))
    finally:
        for r in replicas:
            if r.proc.p.poll() is None:
                r.proc.stop()
        up.stop()
        proxy.stop()
        rds.stop()


if __name__ == "__main__":
    main()
