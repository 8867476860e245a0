"""Distributed-mode benchmark (issue 19): tierwise's capability workers against Celery (Redis
broker and result backend) and taskiq (Redis streams broker), doing the same job: one chat
completion from a fixed-latency stub upstream (bench/stub_upstream.py; bench/dispatch_jobs.py
holds the Celery and taskiq task).

1. Per-task dispatch overhead: tasks sent one at a time to one worker, each system's latency
   minus the median latency of calling its own job directly in-process in the same round
   (tierwise: the worker's own path, the Gateway core; Celery: the task function; taskiq: the
   coroutine). Stub latency 0, so the figure is the dispatch machinery alone. Also the workers'
   CPU time per task (utime+stime of the worker processes and their children, from /proc).
2. Throughput with 1, 2 and 4 worker processes against a stub answering after 50 ms, each worker
   allowed `--capacity` tasks at once (tierwise capacity, Celery thread pool concurrency, taskiq
   max-async-tasks), so a worker is I/O-bound: tasks/s and the 4-worker/1-worker ratio.

Rounds interleave the systems (rotating order) inside one run; everything runs against a
redis-server of the benchmark's own (no persistence) on a free port, and the stub in its own process.

    python bench/dispatch.py                       # defaults: 5 rounds, 100 + 400 tasks, capacity 4
    python bench/dispatch.py --systems tierwise,celery --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listening on {port}") from None
            time.sleep(0.05)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of these processes and all their descendants (clock ticks from /proc)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[int, int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        ppid, ut, st = int(fields[1]), int(fields[11]), int(fields[12])
        children.setdefault(ppid, []).append(int(d))
        stats[int(d)] = (ut, st)
    total, todo, seen = 0, list(pids), set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        ut, st = stats.get(p, (0, 0))
        total += ut + st
        todo.extend(children.get(p, []))
    return total / os.sysconf("SC_CLK_TCK")


class Fleet:
    """N worker processes of one system."""

    def __init__(self, system: str, n: int, env: dict[str, str], work: Path, capacity: int, redis_url: str,
                 prefix: str, stub_url: str) -> None:
        self.system, self.n, self.procs = system, n, []  # type: ignore[var-annotated]
        self.logs: list[Path] = []
        for i in range(n):
            log = work / f"{system}-{n}-{i}.log"
            self.logs.append(log)
            if system == "tierwise":
                cfg = {"ledger": {"enabled": False},
                       "providers": {"stub": {"kind": "openai", "base_url": stub_url + "/v1", "locality": "local"}},
                       "models": {"stub": {"provider": "stub", "model": "stub"}},
                       "dispatch": {"redis_url": redis_url, "prefix": prefix, "tenant": "bench",
                                    "worker": {"id": f"tw-{n}-{i}", "capacity": capacity, "locality": "local",
                                               "capabilities": {"job": {"model": "stub"}}}}}
                path = work / f"worker-{n}-{i}.yaml"
                path.write_text(yaml.safe_dump(cfg))
                cmd = [PY, "-m", "tierwise.cli", "worker", "-c", str(path), "--log-level", "warning"]
            elif system == "celery":
                cmd = [PY, "-m", "celery", "-A", "dispatch_jobs", "worker", "--pool", "threads", "--concurrency",
                       str(capacity), "-n", f"w{n}-{i}@bench", "--without-heartbeat", "--without-gossip",
                       "--without-mingle", "-l", "info"]
            else:
                cmd = [PY, "-m", "taskiq", "worker", "dispatch_jobs:taskiq_broker", "--workers", "1",
                       "--max-async-tasks", str(capacity), "--ack-type", "when_executed", "--log-level", "INFO"]
            with open(log, "wb") as out:
                self.procs.append(subprocess.Popen(cmd, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT))
        marker = {"tierwise": b"tierwise: worker ", "celery": b" ready.", "taskiq": b"Listening started"}[system]
        deadline = time.monotonic() + 60
        for p, log in zip(self.procs, self.logs, strict=True):
            while marker not in log.read_bytes():
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{system} worker did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)

    def cpu(self) -> float:
        return cpu_seconds([p.pid for p in self.procs])

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Clients:
    """One caller per system, in this process; `one(system, prompt)` dispatches and waits."""

    def __init__(self, redis_url: str, prefix: str, stub_url: str) -> None:
        from tierwise.config import parse_config
        from tierwise.dispatch.client import Dispatcher
        from tierwise.dispatch.serving import CapabilityRunner
        from tierwise.gateway import Gateway

        self.dispatcher = Dispatcher(redis_url, tenant="bench", prefix=prefix, max_pending=100_000, timeout=120)
        cfg = parse_config(yaml.safe_dump({
            "ledger": {"enabled": False},
            "providers": {"stub": {"kind": "openai", "base_url": stub_url + "/v1", "locality": "local"}},
            "models": {"stub": {"provider": "stub", "model": "stub"}},
            "dispatch": {"redis_url": redis_url, "worker": {"capabilities": {"job": {"model": "stub"}}}}}))
        assert cfg.dispatch is not None and cfg.dispatch.worker is not None
        self.gateway = Gateway(cfg)
        self.runner = CapabilityRunner(self.gateway, cfg.dispatch.worker, "direct")
        self.taskiq_started = False

    async def start(self) -> None:
        import dispatch_jobs

        await dispatch_jobs.taskiq_broker.startup()
        self.taskiq_started = True

    async def close(self) -> None:
        import dispatch_jobs

        await self.dispatcher.close()
        await self.gateway.close()
        if self.taskiq_started:
            await dispatch_jobs.taskiq_broker.shutdown()
        if dispatch_jobs._session is not None:
            await dispatch_jobs._session.close()

    async def one(self, system: str, prompt: str) -> str:
        import dispatch_jobs

        if system == "tierwise":
            return (await self.dispatcher.dispatch("job", prompt)).text
        if system == "celery":
            return await asyncio.to_thread(lambda: dispatch_jobs.call_stub.delay(prompt).get(timeout=120))
        t = await dispatch_jobs.call_stub_async.kiq(prompt)
        r = await t.wait_result(check_interval=0.001, timeout=120)  # its fastest polling: its best latency
        return str(r.return_value)

    async def direct(self, system: str, prompt: str) -> str:
        import dispatch_jobs

        if system == "tierwise":
            r = await self.runner.run("job", {"messages": [{"role": "user", "content": prompt}]}, "direct")
            return str(r["body"]["choices"][0]["message"]["content"])
        if system == "celery":
            return dispatch_jobs.call_stub.run(prompt)  # type: ignore[no-any-return]
        return await dispatch_jobs.call_stub_async.original_func(prompt)  # type: ignore[no-any-return]

    async def many(self, system: str, n: int) -> float:
        """Seconds for n tasks sent at once (celery's client is synchronous: it sends, then waits)."""
        import dispatch_jobs

        t0 = time.perf_counter()
        if system == "celery":
            def run() -> None:
                rs = [dispatch_jobs.call_stub.delay(f"t{i}") for i in range(n)]
                for r in rs:
                    r.get(timeout=300)
            await asyncio.to_thread(run)
        else:
            sem = asyncio.Semaphore(256)  # the caller's own bound on open waits

            async def go(i: int) -> None:
                async with sem:
                    await self.one(system, f"t{i}")
            await asyncio.gather(*[go(i) for i in range(n)])
        return time.perf_counter() - t0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    systems = args.systems.split(",")
    work = Path(tempfile.mkdtemp(prefix="tw-dispatch-bench-"))
    rport, s0port, s50port = free_port(), free_port(), free_port()
    procs = [subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL),
             subprocess.Popen([PY, str(HERE / "stub_upstream.py"), "--port", str(s0port), "--latency", "0"]),
             subprocess.Popen([PY, str(HERE / "stub_upstream.py"), "--port", str(s50port), "--latency",
                               str(args.latency)])]
    for p in (rport, s0port, s50port):
        wait_port(p)
    redis_url = f"redis://127.0.0.1:{rport}/0"
    prefix = f"bench:{uuid.uuid4().hex[:6]}:"
    out: dict[str, Any] = {"overhead": {}, "throughput": {}}
    try:
        for phase, stub_port in (("overhead", s0port), ("throughput", s50port)):
            stub_url = f"http://127.0.0.1:{stub_port}"
            env = {**os.environ, "BENCH_REDIS_URL": redis_url, "BENCH_STUB_URL": stub_url,
                   "BENCH_QUEUE": f"q-{phase}", "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src"),
                                                                                 os.environ.get("PYTHONPATH", "")])}
            os.environ.update({k: env[k] for k in ("BENCH_REDIS_URL", "BENCH_STUB_URL", "BENCH_QUEUE")})
            sys.modules.pop("dispatch_jobs", None)  # re-read the environment of this phase
            clients = Clients(redis_url, prefix, stub_url)
            await clients.start()
            try:
                if phase == "overhead":
                    out["overhead"] = await overhead(args, systems, clients, env, work, redis_url, prefix, stub_url)
                else:
                    out["throughput"] = await throughput(args, systems, clients, env, work, redis_url, prefix,
                                                         stub_url)
            finally:
                await clients.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return out


async def overhead(args: argparse.Namespace, systems: list[str], clients: Clients, env: dict[str, str], work: Path,
                   redis_url: str, prefix: str, stub_url: str) -> dict[str, Any]:
    # started and stopped off the event loop: the callers' readers keep running meanwhile
    fleets = {s: await asyncio.to_thread(Fleet, s, 1, env, work, args.capacity, redis_url, prefix, stub_url)
              for s in systems}
    extra: dict[str, list[float]] = {s: [] for s in systems}
    cpu_ms: dict[str, list[float]] = {s: [] for s in systems}
    try:
        for s in systems:  # warm-up: connections, imports, script loading
            for i in range(20):
                assert (await clients.one(s, f"warm {i}")) and await clients.direct(s, f"warm {i}")
        for r in range(args.rounds):
            for s in systems[r % len(systems):] + systems[:r % len(systems)]:
                direct = []
                for i in range(args.overhead_tasks):
                    t0 = time.perf_counter()
                    await clients.direct(s, f"d{i}")
                    direct.append(time.perf_counter() - t0)
                base = statistics.median(direct)
                c0 = fleets[s].cpu()
                for i in range(args.overhead_tasks):
                    t0 = time.perf_counter()
                    await clients.one(s, f"o{i}")
                    extra[s].append((time.perf_counter() - t0 - base) * 1000)
                cpu_ms[s].append((fleets[s].cpu() - c0) * 1000 / args.overhead_tasks)
    finally:
        for f in fleets.values():
            await asyncio.to_thread(f.stop)
    return {s: {"p50_ms": pct(extra[s], 50), "p99_ms": pct(extra[s], 99),
                "worker_cpu_ms_per_task": statistics.median(cpu_ms[s]), "tasks": len(extra[s])} for s in systems}


async def throughput(args: argparse.Namespace, systems: list[str], clients: Clients, env: dict[str, str],
                     work: Path, redis_url: str, prefix: str, stub_url: str) -> dict[str, Any]:
    res: dict[str, dict[int, list[float]]] = {s: {} for s in systems}
    for n in args.workers:
        fleets = {s: await asyncio.to_thread(Fleet, s, n, env, work, args.capacity, redis_url, prefix, stub_url)
                  for s in systems}
        try:
            for s in systems:
                await clients.many(s, 8 * n * args.capacity)  # warm-up: every worker connected and busy once
            for r in range(args.rounds):
                for s in systems[r % len(systems):] + systems[:r % len(systems)]:
                    res[s].setdefault(n, []).append(args.throughput_tasks / await clients.many(s, args.throughput_tasks))
        finally:
            for f in fleets.values():
                await asyncio.to_thread(f.stop)
    return {s: {n: statistics.median(v) for n, v in per.items()} for s, per in res.items()}


def report(out: dict[str, Any], args: argparse.Namespace) -> str:
    lines = ["| system | overhead p50 ms | overhead p99 ms | worker CPU ms/task |", "|---|---|---|---|"]
    for s, o in out["overhead"].items():
        lines.append(f"| {s} | {o['p50_ms']:.2f} | {o['p99_ms']:.2f} | {o['worker_cpu_ms_per_task']:.2f} |")
    ws = args.workers
    lines += ["", "| system | " + " | ".join(f"{n} worker(s) tasks/s" for n in ws) + f" | {ws[-1]}/{ws[0]} |",
              "|---|" + "---|" * (len(ws) + 1)]
    for s, per in out["throughput"].items():
        lines.append(f"| {s} | " + " | ".join(f"{per[n]:.1f}" for n in ws) + f" | {per[ws[-1]] / per[ws[0]]:.2f}× |")
    o = out["overhead"]
    if "tierwise" in o:
        for other in (s for s in o if s != "tierwise"):
            lines.append(f"\ntierwise/{other} overhead: p50 ×{o['tierwise']['p50_ms'] / o[other]['p50_ms']:.2f}, "
                         f"p99 ×{o['tierwise']['p99_ms'] / o[other]['p99_ms']:.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", default="tierwise,celery,taskiq")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--overhead-tasks", type=int, default=100, help="sequential tasks per system and round")
    ap.add_argument("--throughput-tasks", type=int, default=400, help="tasks sent at once per system and round")
    ap.add_argument("--capacity", type=int, default=4, help="tasks one worker runs at once")
    ap.add_argument("--latency", type=float, default=0.05, help="the stub's latency for the throughput runs")
    ap.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 4])
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    out = asyncio.run(run(args))
    print(report(out, args))


if __name__ == "__main__":
    main()
