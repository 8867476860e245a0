"""Gateway overhead, side by side, in one run: direct to a stub upstream, through tierwise,
through LiteLLM's proxy, and (Anthropic path) through claude-code-router.

Each gateway runs as one process; the stub upstream and the load generator each run in
their own process, all on loopback. Every target is measured twice, alternating, and the
medians are reported; added latency is the gateway's figure minus the direct figure of the
same round.

    python bench/gateway_overhead.py            # writes bench/out/gateway_overhead.json and prints a table
    python bench/gateway_overhead.py --quick    # shorter runs

Comparators are optional and found here (install them with bench/install_comparators.sh):
  LiteLLM: bench/.envs/litellm/bin/litellm     claude-code-router: bench/.envs/ccr/node_modules/.bin/ccr
`bare` (bench/bare_passthrough.py) is the floor: uvicorn + aiohttp forwarding bytes, nothing else.
`TW_LEDGER=false` runs tierwise with its ledger off, to show what the ledger costs; `TW_JOURNAL=false`
keeps the ledger but turns its crash journal off.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
LITELLM = HERE / ".envs" / "litellm" / "bin" / "litellm"
CCR = HERE / ".envs" / "ccr" / "node_modules" / ".bin" / "ccr"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process and its children, in MB."""
    total = 0.0
    pids = [pid]
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


class Proc:
    def __init__(self, name: str, cmd: list[str], port: int, env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.name, self.port = name, port
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  start_new_session=True)
        wait_port(port, 120)

    def stop(self) -> None:
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_stub(latency: float, *extra: str) -> Proc:
    """The stub upstream; `extra` are more of its flags (e.g. "--fault-rate", "0.05")."""
    port = free_port()
    return Proc(f"stub{int(latency * 1000)}", [PY, str(HERE / "stub_upstream.py"), "--port", str(port),
                                                  "--latency", str(latency), *extra], port)


def serve_tierwise(workdir: Path, config: Callable[[int], str]) -> Proc:
    """`tierwise serve` on workdir/tierwise.yaml, whose text is `config(port)`."""
    port = free_port()
    cfg = workdir / "tierwise.yaml"
    cfg.write_text(config(port))
    return Proc("tierwise", [str(ROOT / ".venv" / "bin" / "tierwise"), "serve", "-c", str(cfg)], port)


def start_tierwise(stub: Proc, workdir: Path) -> Proc:
    journal = f", journal: {{enabled: {os.environ['TW_JOURNAL']}}}" if "TW_JOURNAL" in os.environ else ""
    return serve_tierwise(workdir, lambda port: f"""
server: {{port: {port}, default_route: main}}
ledger: {{path: {workdir / "ledger.db"}, enabled: {os.environ.get("TW_LEDGER", "true")}{journal}}}
reference_model: ref
providers:
  stub: {{kind: openai, base_url: "http://127.0.0.1:{stub.port}/v1", locality: local}}
  stub_anthropic: {{kind: anthropic, base_url: "http://127.0.0.1:{stub.port}", locality: remote}}
models:
  m: {{provider: stub, model: stub-model}}
  ref: {{provider: stub_anthropic, model: stub-model, price: {{input: 3, output: 15}}}}
routes:
  main:
    policy: rules
    rules:
      - {{match: {{model: "*haiku*"}}, target: m}}
    default: m
""")


def start_bare(stub: Proc) -> Proc:
    port = free_port()
    return Proc("bare", [PY, str(HERE / "bare_passthrough.py"), "--port", str(port),
                         "--upstream", f"http://127.0.0.1:{stub.port}"], port)


def start_litellm(stub: Proc, workdir: Path) -> Proc | None:
    if not LITELLM.exists():
        return None
    port = free_port()
    cfg = workdir / "litellm.yaml"
    cfg.write_text(f"""
model_list:
  - model_name: m
    litellm_params:
      model: openai/stub-model
      api_base: http://127.0.0.1:{stub.port}/v1
      api_key: sk-stub
litellm_settings:
  telemetry: false
  drop_params: true
""")
    # The load generator sends `Bearer sk-bench`; LiteLLM refuses to start without a master key.
    env = dict(os.environ, LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False", DISABLE_SCHEMA_UPDATE="true",
               LITELLM_MASTER_KEY="sk-bench")
    return Proc("litellm", [str(LITELLM), "--config", str(cfg), "--port", str(port), "--host", "127.0.0.1",
                            "--num_workers", "1"], port, env=env)


def start_ccr(stub: Proc, workdir: Path) -> Proc | None:
    if not CCR.exists():
        return None
    port = free_port()
    home = workdir / "ccr-home"
    (home / ".claude-code-router").mkdir(parents=True, exist_ok=True)
    (home / ".claude-code-router" / "config.json").write_text(json.dumps({
        "PORT": port, "LOG": False, "HOST": "127.0.0.1", "NON_INTERACTIVE_MODE": True,
        "Providers": [{"name": "stub", "api_base_url": f"http://127.0.0.1:{stub.port}/v1/chat/completions",
                       "api_key": "sk-stub", "models": ["stub-model"]}],
        "Router": {"default": "stub,stub-model"},
    }))
    env = dict(os.environ, HOME=str(home))
    return Proc("ccr", [str(CCR), "start"], port, env=env, cwd=str(home))


def load(url: str, api: str, mode: str, *, stream: bool = False, n: int = 1000, duration: float = 10,
         rate: float = 500, concurrency: int = 50, model: str = "m") -> dict:
    cmd = [PY, str(HERE / "loadgen.py"), "--url", url, "--api", api, "--mode", mode, "-n", str(n),
           "--duration", str(duration), "--rate", str(rate), "--concurrency", str(concurrency), "--model", model]
    if stream:
        cmd.append("--stream")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def scenarios(quick: bool) -> list[tuple[str, dict]]:
    d = 4 if quick else 10
    n = 400 if quick else 2000
    return [
        ("serial", {"mode": "serial", "n": n}),
        ("open500", {"mode": "open", "rate": 500, "duration": d}),
        ("closed50", {"mode": "closed", "concurrency": 50, "duration": d}),
        ("stream_serial", {"mode": "serial", "n": n // 4, "stream": True}),
        ("stream_closed50", {"mode": "closed", "concurrency": 50, "duration": d, "stream": True}),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--latency", type=float, default=0.0, help="stub latency in seconds (0 or 0.05)")
    ap.add_argument("--only", default="", help="comma list of targets")
    ap.add_argument("--scenarios", default="", help="comma list of scenarios (serial, open500, closed50, "
                    "stream_serial, stream_closed50); all by default")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    stub = start_stub(a.latency)
    procs: dict[str, Proc | None] = {}
    try:
        procs["tierwise"] = start_tierwise(stub, work)
        wanted = set(a.only.split(",")) if a.only else {"bare", "litellm", "ccr"}
        procs["bare"] = start_bare(stub) if "bare" in wanted else None
        procs["litellm"] = start_litellm(stub, work) if "litellm" in wanted else None
        procs["ccr"] = start_ccr(stub, work) if "ccr" in wanted else None
        # (target, api, base url, model)
        targets: list[tuple[str, str, str, str]] = [
            ("direct", "openai", f"http://127.0.0.1:{stub.port}", "m"),
            ("tierwise", "openai", f"http://127.0.0.1:{procs['tierwise'].port}", "m"),  # type: ignore[union-attr]
            ("direct", "anthropic", f"http://127.0.0.1:{stub.port}", "m"),
            # Anthropic client, OpenAI-compatible upstream: the translation path claude-code-router also takes.
            ("tierwise", "anthropic", f"http://127.0.0.1:{procs['tierwise'].port}", "claude-haiku-4-5"),  # type: ignore[union-attr]
        ]
        if procs["bare"]:  # the floor: a pass-through with nothing in it
            targets.append(("bare", "openai", f"http://127.0.0.1:{procs['bare'].port}", "m"))
        if procs["litellm"]:
            targets.append(("litellm", "openai", f"http://127.0.0.1:{procs['litellm'].port}", "m"))
        if procs["ccr"]:
            targets.append(("ccr", "anthropic", f"http://127.0.0.1:{procs['ccr'].port}", "claude-haiku-4-5"))
        if a.only:
            keep = set(a.only.split(","))
            targets = [t for t in targets if t[0] in keep or t[0] == "direct"]
        chosen = [(n, kw) for n, kw in scenarios(a.quick) if not a.scenarios or n in a.scenarios.split(",")]
        results: dict[str, dict[str, list[dict]]] = {}
        for rnd in range(a.rounds):
            order = targets if rnd % 2 == 0 else list(reversed(targets))
            for name, api, url, model in order:
                key = f"{name}/{api}"
                for sname, kw in chosen:
                    r = load(url, api, model=model, **kw)
                    results.setdefault(key, {}).setdefault(sname, []).append(r)
                    print(f"round {rnd} {key:20s} {sname:16s} p50={r['p50_ms']:.2f}ms p99={r['p99_ms']:.2f}ms "
                          f"ttft50={r['ttft_p50_ms']:.2f} rps={r['rps']:.0f} err={r['errors']}", flush=True)
        rss = {n: rss_mb(p.p.pid) for n, p in procs.items() if p}
    finally:
        for p in procs.values():
            if p:
                p.stop()
        stub.stop()
        shutil.rmtree(work, ignore_errors=True)

    def med(key: str, sname: str, field: str) -> float:
        runs = results[key].get(sname)
        return statistics.median(r[field] for r in runs) if runs else math.nan

    table = []
    for key in results:
        name, api = key.split("/")
        direct = f"direct/{api}"
        row: dict = {"target": name, "api": api}
        for sname, field, label in (("serial", "p50_ms", "serial_p50"), ("serial", "p99_ms", "serial_p99"),
                                    ("open500", "p50_ms", "open500_p50"), ("open500", "p99_ms", "open500_p99"),
                                    ("stream_serial", "ttft_p50_ms", "ttft_serial_p50"),
                                    ("stream_closed50", "ttft_p50_ms", "ttft_c50_p50")):
            v = med(key, sname, field)
            row[label] = v if name == "direct" else v - med(direct, sname, field)
        row["rps_c50"] = med(key, "closed50", "rps")
        row["stream_rps_c50"] = med(key, "stream_closed50", "rps")
        row["errors_c50"] = sum(r["errors"] for s in ("closed50", "stream_closed50") for r in results[key].get(s, []))
        row["rss_peak_mb"] = rss.get(name)
        table.append(row)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"gateway_overhead_{int(a.latency * 1000)}ms.json").write_text(json.dumps(
        {"table": table, "raw": results}, indent=1))
    print()
    print(f"stub latency {a.latency * 1000:.0f} ms; figures for gateways are ADDED over direct (ms), medians of "
          f"{a.rounds} alternating rounds")
    cols = (("serial p50", "serial_p50", 2), ("serial p99", "serial_p99", 2), ("open500 p50", "open500_p50", 2),
            ("open500 p99", "open500_p99", 2), ("TTFT serial", "ttft_serial_p50", 2), ("TTFT c50", "ttft_c50_p50", 2),
            ("rps c50", "rps_c50", 0), ("stream rps c50", "stream_rps_c50", 0), ("errors c50", "errors_c50", 0),
            ("peak RSS MB", "rss_peak_mb", 0))
    print("| target | api | " + " | ".join(c[0] for c in cols) + " |")
    print("|" + "---|" * (len(cols) + 2))
    for r in table:
        cells = ["-" if r[k] is None or (isinstance(r[k], float) and math.isnan(r[k])) else f"{r[k]:.{d}f}"
                 for _, k, d in cols]
        print(f"| {r['target']} | {r['api']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
