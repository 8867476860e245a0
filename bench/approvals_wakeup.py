"""How fast an approval releases a waiting request, and what waiting costs, A/B in one run.

Three `tierwise serve` processes of this checkout on one stub upstream (bench/stub_upstream.py):
M with the in-process approval store, A and B sharing a Redis store (the redis at 127.0.0.1:6379,
a key prefix of this run, deleted at the end). Route `main` is gated.

1. Release latency, interleaved round by round: a client sends a request; once it is listed as
   pending, the approval is POSTed and the time until the client has its answer is taken:
   `memory` (request and approval on M), `redis-cross` (request on A, approval through B: the
   pub/sub notice crosses processes), and `ungated` (the same request on an ungated route of M
   plus one admin call on M: what the approval path costs beyond those two HTTP exchanges).
   The waiters' own recheck is 15 s, so a release in milliseconds is the published notice.
2. Idle cost: CPU time of the gateway processes (A+B, then M) over a window with N requests
   pending, against the same window length with none (no polling loop: the difference is ~0).

    nice -n 5 /work/main/.venv/bin/python bench/approvals_wakeup.py --rounds 30 --pending 50
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway_overhead import ROOT, Proc, cpu_s, free_port, start_stub  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from tests.harness import drop_redis_keys  # noqa: E402

ADMIN = "bench-admin-" + uuid.uuid4().hex[:8]
REDIS = "redis://127.0.0.1:6379/0"


def config(port: int, stub: int, store: dict) -> str:
    return json.dumps({
        "server": {"host": "127.0.0.1", "port": port, "admin_keys_env": ["BENCH_ADMIN"]},
        "ledger": {"enabled": False},
        "providers": {"stub": {"kind": "openai", "base_url": f"http://127.0.0.1:{stub}/v1", "locality": "remote"}},
        "models": {"m": {"provider": "stub", "model": "m", "price": {"input": 1, "output": 1}}},
        "routes": {"main": {"policy": "fallback", "targets": ["m"]}, "open": {"policy": "fallback", "targets": ["m"]}},
        "approvals": {"store": store, "routes": {"main": {"timeout": "5m", "max_pending": 1000}}},
    })


def serve(workdir: Path, name: str, stub: int, store: dict) -> Proc:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tierwise.yaml").write_text(config(port, stub, store))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), BENCH_ADMIN=ADMIN)
    return Proc(name, [sys.executable, "-m", "tierwise.cli", "serve", "-c", str(workdir / "tierwise.yaml")], port,
                env=env)


def call(port: int, method: str, path: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else {}


def chat(port: int, route: str, out: list) -> None:
    out.append(call(port, "POST", "/v1/chat/completions",
                    {"model": route, "max_tokens": 5, "messages": [{"role": "user", "content": "deploy"}]})[0])


def pending(port: int) -> list[dict]:
    return call(port, "GET", "/v1/tierwise/approvals", key=ADMIN)[1]["pending"]


def wait_pending(port: int, n: int) -> list[dict]:
    while len(p := pending(port)) < n:
        time.sleep(0.002)
    return p


def release(req_port: int, admin_port: int) -> float:
    """Seconds from the approval POST to the client holding its answer."""
    out: list = []
    t = threading.Thread(target=chat, args=(req_port, "main", out))
    t.start()
    [p] = wait_pending(admin_port, 1)
    t0 = time.perf_counter()
    call(admin_port, "POST", "/v1/tierwise/approvals", {"id": p["id"], "decision": "approve"}, key=ADMIN)
    t.join()
    assert out == [200], out
    return time.perf_counter() - t0


def ungated(port: int) -> float:
    """The same two HTTP exchanges without the approval path: an admin call, then the request."""
    t0 = time.perf_counter()
    pending(port)
    out: list = []
    chat(port, "open", out)
    assert out == [200], out
    return time.perf_counter() - t0


def idle_cpu(procs: list[Proc], req_port: int, admin_port: int, n: int, window: float) -> tuple[float, float]:
    """(CPU seconds over `window` with nothing pending, with `n` requests pending) of `procs`."""
    def cpu() -> float:
        return sum(cpu_s(p.p.pid) for p in procs)

    c0 = cpu()
    time.sleep(window)
    quiet = cpu() - c0
    outs: list = []
    threads = [threading.Thread(target=chat, args=(req_port, "main", outs)) for _ in range(n)]
    for t in threads:
        t.start()
    held = wait_pending(admin_port, n)
    time.sleep(0.5)  # let the admissions' own work finish before the window
    c0 = cpu()
    time.sleep(window)
    busy = cpu() - c0
    for p in held:
        call(admin_port, "POST", "/v1/tierwise/approvals", {"id": p["id"], "decision": "reject"}, key=ADMIN)
    for t in threads:
        t.join()
    return quiet, busy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--pending", type=int, default=50)
    ap.add_argument("--window", type=float, default=5.0)
    args = ap.parse_args()
    prefix = f"bench-approvals:{uuid.uuid4().hex[:10]}:"
    work = Path(tempfile.mkdtemp(prefix="bench-approvals-"))
    stub = start_stub(0.0)
    procs: list[Proc] = []
    try:
        m = serve(work / "m", "mem", stub.port, {"backend": "memory"})
        redis_store = {"backend": "redis", "redis_url": REDIS, "key_prefix": prefix}
        a = serve(work / "a", "replicaA", stub.port, redis_store)
        b = serve(work / "b", "replicaB", stub.port, redis_store)
        procs = [m, a, b]
        for _ in range(3):  # warm-up
            release(m.port, m.port), release(a.port, b.port), ungated(m.port)
        res: dict[str, list[float]] = {"memory": [], "redis-cross": [], "ungated": []}
        for r in range(args.rounds):
            order = [("memory", lambda: release(m.port, m.port)), ("redis-cross", lambda: release(a.port, b.port)),
                     ("ungated", lambda: ungated(m.port))]
            for name, fn in (order if r % 2 == 0 else order[::-1]):
                res[name].append(fn())
        p50 = {k: statistics.median(v) * 1000 for k, v in res.items()}
        p90 = {k: sorted(v)[int(0.9 * (len(v) - 1))] * 1000 for k, v in res.items()}
        q_r, b_r = idle_cpu([a, b], a.port, b.port, args.pending, args.window)
        q_m, b_m = idle_cpu([m], m.port, m.port, args.pending, args.window)
        out = {
            "rounds": args.rounds, "release_ms_p50": p50, "release_ms_p90": p90,
            "redis_cross_over_memory_p50": p50["redis-cross"] / p50["memory"],
            "memory_over_ungated_p50": p50["memory"] / p50["ungated"],
            "idle_cpu_s": {"window_s": args.window, "pending": args.pending,
                           "redis_A+B_none": q_r, "redis_A+B_pending": b_r, "memory_none": q_m, "memory_pending": b_m},
        }
        print(json.dumps(out, indent=2))
    finally:
        for p in procs:
            p.stop()
        stub.stop()
        drop_redis_keys(REDIS, prefix)


if __name__ == "__main__":
    main()
