"""Memory pressure: concurrent large bodies and concurrent sandbox runs against a real `tierwise
serve`, with the gateway's resident memory (its own, and with every process below it: the code
sandbox's children) sampled from /proc, and a /health probe to see whether it stays responsive.

    python bench/memory_pressure.py                      # the default phases, ~1-2 minutes
    python bench/memory_pressure.py --tierwise-src main  # a git revision, a checkout or a src/ folder
    python bench/memory_pressure.py --phases large_bodies --large-concurrency 20 --large-mb 30

Set-up, all on loopback: the gateway (this checkout's src/ unless --tierwise-src) with two routes:
`main` (rules) forwards to the fast stub upstream (bench/stub_upstream.py); `code` is a cascade
`local` -> `frontier` with a `python_code` verifier `run: true`, whose upstream (a second stub,
`--text-file`) answers every request with model-written code that allocates memory and spins.
With `--sandbox-procs N` > 1 the code also tries to start N-1 more interpreters that do the same,
through `_posixsubprocess.fork_exec` (the call Python 3.11 does not audit): the way one run
went past its per-process RLIMIT_AS in the review. A sandbox that bounds memory per run in total
refuses or contains them; the figures then show it.

Phases (each starts once the previous one has ended; `--phases` picks some):
  large_bodies  --large-concurrency clients each POST one --large-mb MB chat request at once, --waves times
  many_bodies   --small-total requests of --small-mb MB, --small-concurrency at a time
  sandbox      --sandbox-concurrency cascade requests at once on route `code`, --waves times
  all          the three at the same time
Per phase: peak RSS of the gateway process and of it with its descendants (sampled every
--sample-ms), its RSS once the phase has ended and settled (kept), HTTP statuses (and client-side
failures), the sandbox verdicts the gateway reported (x-tierwise-steps), and the /health probe
(every 200 ms; responsive = every probe answered 200 within --health-timeout). The gateway's own
VmHWM (its peak over the whole run) is reported at the end. Writes bench/out/memory_pressure.json.

The machine is shared: before it starts, the run checks that the worst case it can cause (bodies
kept by the gateway plus every sandbox process at its allocation) fits in half of MemAvailable.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway_overhead import ROOT, Proc, descendants, resolve_src, serve_tierwise, start_stub  # noqa: E402

# The model's answer: code that allocates ALLOC_MB (touched: the bytes are written, so resident)
# and spins SPIN_S seconds of wall time; with PROCS > 1 it first tries to start PROCS-1 more
# interpreters doing the same. Every process stops by itself after SPIN_S, contained or not.
CODE = '''```python
import os, sys, time
ALLOC_MB, SPIN_S, PROCS = {alloc_mb}, {spin_s}, {procs}
CHILD = "import time\\nb = b'x' * ({alloc_mb} << 20)\\nt = time.time()\\nwhile time.time() - t < {spin_s}: pass\\n"
started = 0
for _ in range(PROCS - 1):
    try:
        import _posixsubprocess
        exe = os.fsencode(sys.executable)
        r, w = os.pipe()
        _posixsubprocess.fork_exec([exe, b"-I", b"-S", b"-c", CHILD.encode()], [exe], True, (w,), None, None,
                                   -1, -1, -1, -1, -1, -1, r, w, False, False, -1, None, None, None, -1, None, False)
        started += 1
    except BaseException as e:
        print("extra process refused:", type(e).__name__, e, file=sys.stderr)
        break
block = b"x" * (ALLOC_MB << 20)
t = time.time()
while time.time() - t < SPIN_S:
    pass
print("allocated", len(block) >> 20, "MB; extra processes started:", started)
```
'''


def config(port: int, workdir: Path, fast: Proc, coder: Proc, a: argparse.Namespace) -> str:
    extra = f", {a.verifier_extra}" if a.verifier_extra else ""
    verifier = (f"{{type: python_code, run: true, memory_mb: {a.sandbox_memory_mb}, cpu_s: {a.sandbox_cpu_s}, "
                f"timeout_s: {a.sandbox_timeout_s}{extra}}}")
    return f"""
server: {{port: {port}, default_route: main}}
ledger: {{path: {workdir / 'ledger.db'}}}
providers:
  fast: {{kind: openai, base_url: "http://127.0.0.1:{fast.port}/v1", locality: local}}
  coder: {{kind: openai, base_url: "http://127.0.0.1:{coder.port}/v1", locality: local}}
  coder_frontier: {{kind: anthropic, base_url: "http://127.0.0.1:{coder.port}", locality: remote}}
models:
  m: {{provider: fast, model: stub-model}}
  local: {{provider: coder, model: stub-model}}
  frontier: {{provider: coder_frontier, model: stub-model}}
routes:
  main:
    policy: rules
    rules: []
    default: m
  code:
    policy: cascade
    tiers: [local, frontier]
    verifiers: [{verifier}]
""" + a.config_append


# ---------------------------------------------------------------------------- sampling


class Sampler(threading.Thread):
    """Samples the gateway's VmRSS, alone and with its descendants, every `every` seconds."""

    def __init__(self, pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.stop_ = threading.Event()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.peak_self = self.peak_tree = 0.0
            self.peak_procs = 0

    def sample(self) -> tuple[float, float, int]:
        pids = descendants(self.pid)
        own = tree = 0.0
        for p in pids:
            try:
                with open(f"/proc/{p}/status", encoding="ascii", errors="replace") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            mb = int(line.split()[1]) / 1024
                            tree += mb
                            if p == self.pid:
                                own = mb
                            break
            except OSError:
                pass
        return own, tree, len(pids)

    def run(self) -> None:
        while not self.stop_.is_set():
            own, tree, n = self.sample()
            with self.lock:
                self.peak_self = max(self.peak_self, own)
                self.peak_tree = max(self.peak_tree, tree)
                self.peak_procs = max(self.peak_procs, n)
            self.stop_.wait(self.every)


def vm_hwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------------- load


def chat_body(mb: float, route: str, prompt: str = "") -> bytes:
    filler = "a" * int(mb * 1024 * 1024)
    return json.dumps({"model": route, "max_tokens": 64,
                       "messages": [{"role": "user", "content": prompt + filler}]}).encode()


async def post(session: aiohttp.ClientSession, url: str, body: bytes, timeout: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"status": None, "steps": ""}
    try:
        async with session.post(url, data=body, headers={"content-type": "application/json",
                                                         "authorization": "Bearer sk-bench"},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            await r.read()
            rec["status"] = r.status
            rec["steps"] = r.headers.get("x-tierwise-steps", "")
    except TimeoutError:
        rec["error"] = "timeout"
    except aiohttp.ClientError as e:
        rec["error"] = type(e).__name__
    rec["s"] = time.perf_counter() - t0
    return rec


async def bounded(n: int, concurrency: int, make: Any) -> list[dict[str, Any]]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> dict[str, Any]:
        async with sem:
            return await make(i)  # type: ignore[no-any-return]

    return list(await asyncio.gather(*(one(i) for i in range(n))))


class HealthProbe(threading.Thread):
    """GET /health every 200 ms on its own connection, in its own thread (so the load's event loop
    does not delay it): (seconds, status or None) per probe."""

    def __init__(self, port: int, timeout: float) -> None:
        super().__init__(daemon=True)
        self.port, self.timeout = port, timeout
        self.stop_ = threading.Event()
        self.probes: list[tuple[float, int | None]] = []

    def run(self) -> None:
        while not self.stop_.is_set():
            t0 = time.perf_counter()
            status = None
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                conn.request("GET", "/health")
                r = conn.getresponse()
                r.read()
                status = r.status
            except OSError:
                pass
            finally:
                conn.close()
            self.probes.append((time.perf_counter() - t0, status))
            self.stop_.wait(0.2)


async def run_phase(name: str, base: str, a: argparse.Namespace) -> list[dict[str, Any]]:
    url = base + "/v1/chat/completions"
    conn = aiohttp.TCPConnector(limit=0)
    timeout = a.request_timeout
    async with aiohttp.ClientSession(connector=conn) as s:
        async def large() -> list[dict[str, Any]]:
            body = chat_body(a.large_mb, "main")  # one object shared by every request: the client stays small
            recs = []
            for _ in range(a.waves):
                recs += await bounded(a.large_concurrency, a.large_concurrency, lambda i: post(s, url, body, timeout))
            return [{**r, "kind": "large_bodies"} for r in recs]

        async def small() -> list[dict[str, Any]]:
            body = chat_body(a.small_mb, "main")
            recs = await bounded(a.small_total, a.small_concurrency, lambda i: post(s, url, body, timeout))
            return [{**r, "kind": "many_bodies"} for r in recs]

        async def sandbox() -> list[dict[str, Any]]:
            recs = []
            for w in range(a.waves):
                recs += await bounded(a.sandbox_concurrency, a.sandbox_concurrency, lambda i, w=w: post(
                    s, url, json.dumps({"model": "code", "max_tokens": 512, "messages": [
                        {"role": "user", "content": f"Write Python that uses memory (#{w}-{i})."}]}).encode(),
                    timeout))
            return [{**r, "kind": "sandbox"} for r in recs]

        jobs = {"large_bodies": [large], "many_bodies": [small], "sandbox": [sandbox],
                "all": [large, small, sandbox]}[name]
        parts = await asyncio.gather(*(j() for j in jobs))
    return [r for part in parts for r in part]


def summarize(recs: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, dict[str, int]] = {}
    verdicts: dict[str, int] = {}
    for r in recs:
        k = by_kind.setdefault(r["kind"], {})
        key = str(r["status"]) if r["status"] is not None else f"no response ({r.get('error')})"
        k[key] = k.get(key, 0) + 1
        for step in r["steps"].split(","):
            if step.startswith("verdict:python_code:"):
                v = step.rsplit(":", 1)[1]
                verdicts[v] = verdicts.get(v, 0) + 1
    return {"statuses": by_kind, "sandbox_verdicts": verdicts,
            "slowest_s": max((r["s"] for r in recs), default=0.0)}


async def drive(port: int, sampler: Sampler, a: argparse.Namespace) -> list[dict[str, Any]]:
    base = f"http://127.0.0.1:{port}"
    results = []
    for phase in a.phases.split(","):
        sampler.reset()
        prober = HealthProbe(port, a.health_timeout)
        prober.start()
        t0 = time.monotonic()
        recs = await run_phase(phase, base, a)
        elapsed = time.monotonic() - t0
        prober.stop_.set()
        prober.join()
        probes = prober.probes
        with sampler.lock:
            peak_self, peak_tree, peak_procs = sampler.peak_self, sampler.peak_tree, sampler.peak_procs
        await asyncio.sleep(a.settle)
        kept_self, kept_tree, _ = sampler.sample()
        lat = sorted(p[0] for p in probes)
        failed = sum(1 for p in probes if p[1] != 200)
        res = {"phase": phase, "elapsed_s": elapsed, "peak_rss_mb": peak_self, "peak_rss_tree_mb": peak_tree,
               "peak_processes": peak_procs, "kept_rss_mb": kept_self, "kept_rss_tree_mb": kept_tree,
               "health_probes": len(probes), "health_failed": failed,
               "health_max_s": lat[-1] if lat else float("nan"),
               "health_p50_s": statistics.median(lat) if lat else float("nan"),
               "responsive": bool(probes) and failed == 0, **summarize(recs)}
        results.append(res)
        print(f"{phase}: {elapsed:.1f}s, peak RSS {peak_self:.0f} MB (with children {peak_tree:.0f} MB, "
              f"{peak_procs} processes), kept {kept_self:.0f} MB; statuses {json.dumps(res['statuses'])}; "
              f"sandbox verdicts {json.dumps(res['sandbox_verdicts'])}; /health {len(probes)} probes, "
              f"{failed} failed, max {res['health_max_s'] * 1000:.0f} ms", flush=True)
    return results


def worst_case_mb(a: argparse.Namespace) -> float:
    # What the gateway may hold for the bodies (several copies of each in flight, the review saw
    # ~4: 2.4 GB for 20 x 30 MB) plus every sandbox process at its allocation.
    bodies = 4 * (a.large_concurrency * a.large_mb + a.small_concurrency * a.small_mb)
    sandboxes = a.sandbox_concurrency * a.sandbox_procs * (a.alloc_mb + 30)
    return bodies + sandboxes


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tierwise-src", default=str(ROOT), help="a checkout, its src/, or a git revision")
    ap.add_argument("--phases", default="large_bodies,many_bodies,sandbox,all")
    ap.add_argument("--waves", type=int, default=2, help="how many times the large-body and sandbox bursts repeat")
    ap.add_argument("--large-mb", type=float, default=30)
    ap.add_argument("--large-concurrency", type=int, default=20)
    ap.add_argument("--small-mb", type=float, default=1)
    ap.add_argument("--small-total", type=int, default=600)
    ap.add_argument("--small-concurrency", type=int, default=200)
    ap.add_argument("--sandbox-concurrency", type=int, default=4)
    ap.add_argument("--sandbox-procs", type=int, default=3,
                    help="processes the model's code tries to run (1: only itself)")
    ap.add_argument("--alloc-mb", type=int, default=256, help="MB each of the code's processes writes")
    ap.add_argument("--spin-s", type=float, default=3.0, help="wall seconds each of the code's processes spins")
    ap.add_argument("--sandbox-memory-mb", type=int, default=512, help="the verifier's memory_mb")
    ap.add_argument("--sandbox-cpu-s", type=int, default=5, help="the verifier's cpu_s")
    ap.add_argument("--sandbox-timeout-s", type=float, default=10, help="the verifier's timeout_s")
    ap.add_argument("--verifier-extra", default="", help='more keys for the python_code verifier, as YAML flow '
                    'mapping items (e.g. "allow_weak_sandbox: true")')
    ap.add_argument("--config-append", default="", help="YAML appended to the gateway's config (top-level keys "
                    "newer trees may need, e.g. limits)")
    ap.add_argument("--request-timeout", type=float, default=120)
    ap.add_argument("--health-timeout", type=float, default=2.0)
    ap.add_argument("--sample-ms", type=float, default=50)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after a phase before the kept RSS is read")
    ap.add_argument("--force", action="store_true", help="run even if the worst case exceeds MemAvailable / 2")
    a = ap.parse_args()

    need, have = worst_case_mb(a), mem_available_mb()
    print(f"worst case this run can cause: ~{need:,.0f} MB; MemAvailable {have:,.0f} MB", flush=True)
    if need > have / 2 and not a.force:
        raise SystemExit("not enough free memory on this shared machine for these settings (--force to override)")

    work = Path(tempfile.mkdtemp(prefix="tw-mem-"))
    procs: list[Proc] = []
    gw: Proc | None = None
    try:
        src, label = resolve_src(a.tierwise_src, work)
        code = work / "answer.md"
        code.write_text(CODE.format(alloc_mb=a.alloc_mb, spin_s=a.spin_s, procs=a.sandbox_procs))
        fast = start_stub(0.0)
        coder = start_stub(0.0, "--text-file", str(code))
        procs += [fast, coder]
        gw = serve_tierwise(work, lambda port: config(port, work, fast, coder, a), src)
        print(f"tierwise {label}: pid {gw.p.pid} on port {gw.port}", flush=True)
        sampler = Sampler(gw.p.pid, a.sample_ms / 1000)
        idle = sampler.sample()[0]
        sampler.start()
        results = asyncio.run(drive(gw.port, sampler, a))
        sampler.stop_.set()
        hwm = vm_hwm(gw.p.pid)
        alive = gw.p.poll() is None
        gw.stop()
        log = Path(gw.log.name).read_text(errors="replace")
    finally:
        if gw is not None:
            gw.stop()
        for p in procs:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)

    problems = [ln for ln in log.splitlines() if " ERROR " in ln or " CRITICAL " in ln or ln.startswith("Traceback")]
    summary = {"tierwise": label, "args": vars(a), "idle_rss_mb": idle, "gateway_vm_hwm_mb": hwm,
               "gateway_alive_at_end": alive, "log_error_lines": len(problems), "log_errors": problems[:50],
               "phases": results}
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "memory_pressure.json").write_text(json.dumps(summary, indent=1))

    print()
    print(f"tierwise {label}; idle RSS {idle:.0f} MB; gateway peak (VmHWM) over the run {hwm:.0f} MB; "
          f"alive at the end: {'yes' if alive else 'NO'}; ERROR lines in its log: {len(problems)}")
    print(f"bodies: {a.large_concurrency} x {a.large_mb:g} MB at once ({a.waves} waves), {a.small_total} x "
          f"{a.small_mb:g} MB ({a.small_concurrency} at once); sandbox: {a.sandbox_concurrency} cascade requests at "
          f"once ({a.waves} waves), code writing {a.alloc_mb} MB in each of {a.sandbox_procs} process(es), "
          f"verifier memory_mb {a.sandbox_memory_mb}")
    print("| phase | peak RSS MB | peak RSS with children MB | processes | kept RSS MB | statuses | "
          "sandbox verdicts | /health failed / probes | /health max ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        st = "; ".join(f"{kind}: " + ", ".join(f"{s}×{n}" for s, n in sorted(c.items()))
                       for kind, c in r["statuses"].items())
        v = ", ".join(f"{k}×{n}" for k, n in sorted(r["sandbox_verdicts"].items())) or "-"
        print(f"| {r['phase']} | {r['peak_rss_mb']:,.0f} | {r['peak_rss_tree_mb']:,.0f} | {r['peak_processes']} | "
              f"{r['kept_rss_mb']:,.0f} | {st} | {v} | {r['health_failed']} / {r['health_probes']} | "
              f"{r['health_max_s'] * 1000:,.0f} |")
    print(f"\nwrote {out / 'memory_pressure.json'}")


if __name__ == "__main__":
    main()
