"""Gateway overhead, side by side, in one run: direct to a stub upstream, through tierwise, through
LiteLLM's proxy, claude-code-router (Anthropic path), the Portkey open-source gateway, and a bare
pass-through (the floor); optionally through a second tierwise tree (a baseline), for A/B.

Each gateway runs as one process; the stub upstream and the load generator each run in their own
process, all on loopback. Every target is measured in every round; within a round the scenarios
run one after the other and, for each, every target in turn (reversed on odd rounds), so the
runs compared sit next to each other in time. Medians over rounds are reported; added latency is
the gateway's figure minus the direct figure of the same round. Before measuring, one plain and
one streamed request through every target must come back with the stub's own answer text (so
the stub did see and answer the forwarded request), or the target is dropped with a message.

    python bench/gateway_overhead.py --rounds 2                 # all targets; prints a Markdown table
    python bench/gateway_overhead.py --quick --rounds 1         # shorter runs
    # A/B of two tierwise trees, alternating rounds, in one run (a tree: a checkout, its src/
    # folder, or a git revision of this repository, extracted with `git archive`):
    python bench/gateway_overhead.py --baseline-src main --rounds 4 --only tierwise
    python bench/gateway_overhead.py --tierwise-src /work/main --baseline-src 39660db --rounds 2

With `--baseline-src` the run ends with an A/B table: per round and as the median, the change
in added p50 latency (A - B, ms; the direct run cancels out) and the throughput ratio A / B,
checked against the hardening budget (throughput >= 95% of B, p50 at most 0.05 ms more). With a
baseline, both tierwise trees get new processes every round (`--fresh`), so one process's luck
does not side with A or B; use 4+ rounds.
On a shared machine run A against itself once (`--baseline-src` = `--tierwise-src`) to see
the noise floor: an A/B difference smaller than that A/A spread says nothing.

Comparators are optional and found here (install them with bench/install_comparators.sh):
  LiteLLM: bench/.envs/litellm/bin/litellm     claude-code-router: bench/.envs/ccr/node_modules/.bin/ccr
  Portkey: bench/.envs/portkey/node_modules/@portkey-ai/gateway/build/start-server.js (routed by
  headers: x-portkey-provider, x-portkey-custom-host; it has no Anthropic-to-OpenAI translation,
  so its Anthropic row forwards to the stub's Anthropic endpoint, as tierwise's `native` rows do)
`bare` (bench/bare_passthrough.py) is the floor: uvicorn + aiohttp forwarding bytes, nothing else.
`TW_LEDGER=false` runs tierwise with its ledger off, to show what the ledger costs; `TW_JOURNAL=false`
keeps the ledger but turns its crash journal off.
"""

from __future__ import annotations

import argparse
import http.client
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
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
LITELLM = HERE / ".envs" / "litellm" / "bin" / "litellm"
CCR = HERE / ".envs" / "ccr" / "node_modules" / ".bin" / "ccr"
PORTKEY_DIR = HERE / ".envs" / "portkey"
PORTKEY = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
STUB_WORDS = [f"w{i} " for i in range(50)]  # the stub's answer text, word by word (bench/stub_upstream.py)


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


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (children, grandchildren...), from /proc."""
    parent: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                parent[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, todo = [pid], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found += kids
        todo += kids
    return found


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process and all its descendants, in MB."""
    total = 0.0
    for p in descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def cpu_s(pid: int) -> float:
    """CPU time (user + system, seconds) used so far by a process and its live descendants."""
    total = 0
    for p in descendants(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


class Proc:
    def __init__(self, name: str, cmd: list[str], port: int, env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.name, self.port = name, port
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  start_new_session=True)
        try:
            wait_port(port, 120)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"{name} did not start; its log: {self.log.name}") from None

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


# ---------------------------------------------------------------------------- tierwise trees


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def resolve_src(spec: str, scratch: Path) -> tuple[Path, str]:
    """The folder to put on PYTHONPATH (it holds the `tierwise` package) and a label, for a
    checkout, its src/ folder, or a git revision of this repository (extracted into `scratch`)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        for cand in (path, path / "src"):
            if (cand / "tierwise" / "__init__.py").is_file():
                try:
                    label = git("describe", "--always", "--dirty", "--exclude", "*", cwd=cand)
                except (subprocess.CalledProcessError, OSError):
                    label = ""
                return cand.resolve(), f"{cand.resolve()}" + (f" @ {label}" if label else "")
        raise SystemExit(f"{spec}: no tierwise package in it or in its src/")
    try:
        sha = git("rev-parse", "--verify", f"{spec}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"{spec}: neither a folder nor a git revision of {ROOT}") from None
    dest = scratch / f"tree-{sha[:12]}"
    if not (dest / "src" / "tierwise").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "src"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "src", f"{spec} ({sha[:9]})"


def tierwise_env(src: Path) -> dict[str, str]:
    """The environment that makes `.venv/bin/tierwise` import the package from `src` (PYTHONPATH
    comes before the venv's editable install), checked once."""
    env = dict(os.environ, PYTHONPATH=str(src))
    where = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", "import tierwise; print(tierwise.__file__)"],
                           capture_output=True, text=True, env=env, check=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"PYTHONPATH={src} still imports tierwise from {where}")
    return env


def serve_tierwise(workdir: Path, config: Callable[[int], str], src: Path | None = None,
                   name: str = "tierwise", wrapper: tuple[str, ...] = (), extra_env: dict[str, str] | None = None) -> Proc:
    """`tierwise serve` on workdir/tierwise.yaml, whose text is `config(port)`, running the package
    in `src` (by default this checkout's src/, whatever the caller's PYTHONPATH says); `wrapper`
    goes before the command (e.g. valgrind and its options); `extra_env` adds to its environment."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "tierwise.yaml"
    cfg.write_text(config(port))
    env = {**tierwise_env(src or ROOT / "src"), **(extra_env or {})}
    return Proc(name, [*wrapper, str(ROOT / ".venv" / "bin" / "tierwise"), "serve", "-c", str(cfg)], port, env=env)


def start_tierwise(stub: Proc, workdir: Path, src: Path | None = None, name: str = "tierwise",
                   **serve_kw: object) -> Proc:
    """The bench's gateway (see `serve_tierwise`; `serve_kw`: its `wrapper` and `extra_env`): model `m`
    and `*haiku*` go to the stub's OpenAI endpoint, `*sonnet*` to its Anthropic one."""
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
      - {{match: {{model: "*sonnet*"}}, target: ref}}
    default: m
""", src, name, **serve_kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- comparators


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


def start_portkey() -> Proc | None:
    """Portkey's gateway as shipped for Node (`--headless`: no console UI; NODE_ENV=production as a
    deployment runs it). It has no config file: each request names its provider and upstream in
    headers (see `portkey_headers`); 127.0.0.1 is among its default trusted custom hosts."""
    if not PORTKEY.exists():
        return None
    port = free_port()
    env = dict(os.environ, NODE_ENV="production")
    return Proc("portkey", ["node", str(PORTKEY), f"--port={port}", "--headless"], port, env=env, cwd=str(PORTKEY_DIR))


def portkey_headers(stub: Proc, provider: str) -> dict[str, str]:
    return {"x-portkey-provider": provider, "x-portkey-custom-host": f"http://127.0.0.1:{stub.port}/v1"}


# ---------------------------------------------------------------------------- measuring


@dataclass
class Target:
    name: str  # results are keyed "name/api"
    api: str  # the client's API: openai or anthropic
    url: str
    model: str
    label: str  # for the table
    headers: dict[str, str] = field(default_factory=dict)
    proc: Proc | None = None  # the gateway's process (None: direct), whose CPU time is measured

    @property
    def key(self) -> str:
        return f"{self.name}/{self.api}"


def forwards(t: Target) -> str | None:
    """None when one plain and one streamed request through `t` come back with the stub's own answer
    text (so the stub saw and answered them), else what went wrong."""
    sys.path.insert(0, str(HERE))
    from loadgen import request_for

    for stream in (False, True):
        path, body, headers = request_for(t.api, stream, t.model, t.headers)
        host, port = t.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", path, body, headers)
            r = conn.getresponse()
            raw = r.read().decode("utf-8", "replace")
        except OSError as e:
            return f"{'streamed' if stream else 'plain'} request: {type(e).__name__}: {e}"
        finally:
            conn.close()
        if r.status != 200:
            return f"{'streamed' if stream else 'plain'} request: HTTP {r.status}: {raw[:300]}"
        if stream:
            end = "[DONE]" if t.api == "openai" else "message_stop"
            ok = end in raw and all(w in raw for w in STUB_WORDS)
        else:
            obj = json.loads(raw)
            text = (obj["choices"][0]["message"]["content"] if t.api == "openai"
                    else "".join(b.get("text", "") for b in obj["content"]))
            ok = text == "".join(STUB_WORDS)
        if not ok:
            return f"{'streamed' if stream else 'plain'} answer is not the stub's: {raw[:300]}"
    return None


def load(t: Target, mode: str, *, stream: bool = False, n: int = 1000, duration: float = 10,
         rate: float = 500, concurrency: int = 50) -> dict:
    cmd = [PY, str(HERE / "loadgen.py"), "--url", t.url, "--api", t.api, "--mode", mode, "-n", str(n),
           "--duration", str(duration), "--rate", str(rate), "--concurrency", str(concurrency), "--model", t.model]
    for k, v in t.headers.items():
        cmd += ["--header", f"{k}:{v}"]
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


# ---------------------------------------------------------------------------- reporting

COLS = (("serial p50", "serial_p50", 2), ("serial p99", "serial_p99", 2), ("open500 p50", "open500_p50", 2),
        ("open500 p99", "open500_p99", 2), ("TTFT serial", "ttft_serial_p50", 2), ("TTFT c50", "ttft_c50_p50", 2),
        ("rps c50", "rps_c50", 0), ("stream rps c50", "stream_rps_c50", 0), ("CPU µs/req c50", "cpu_c50", 0),
        ("CPU µs/req stream c50", "cpu_stream_c50", 0), ("errors c50", "errors_c50", 0),
        ("peak RSS MB", "rss_peak_mb", 0))
# (A/B metric, scenario, loadgen field, kind): a latency is compared as A - B, a throughput ("ratio") and
# the gateway's CPU time per request ("cost") as A / B.
AB_METRICS = (("serial p50", "serial", "p50_ms", "diff"), ("open500 p50", "open500", "p50_ms", "diff"),
              ("TTFT serial p50", "stream_serial", "ttft_p50_ms", "diff"), ("rps c50", "closed50", "rps", "ratio"),
              ("stream rps c50", "stream_closed50", "rps", "ratio"),
              ("CPU µs/req serial", "serial", "cpu_us_per_req", "cost"),
              ("CPU µs/req c50", "closed50", "cpu_us_per_req", "cost"),
              ("CPU µs/req stream c50", "stream_closed50", "cpu_us_per_req", "cost"))
BUDGET_P50_MS = 0.05  # the hardening may add at most this to the one-at-a-time p50 ...
BUDGET_RPS = 0.95  # ... and keep at least this share of the throughput


def fmt(v: float | None, d: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{d}f}"


def overhead_table(results: dict[str, dict[str, list[dict]]], targets: list[Target],
                   rss: dict[str, float]) -> list[dict]:
    def med(key: str, sname: str, fld: str) -> float:
        runs = results.get(key, {}).get(sname)
        return statistics.median(r[fld] for r in runs) if runs else math.nan

    table = []
    for t in targets:
        if t.key not in results:
            continue
        direct = f"direct/{t.api}"
        row: dict = {"target": t.name, "label": t.label, "api": t.api}
        for sname, fld, label in (("serial", "p50_ms", "serial_p50"), ("serial", "p99_ms", "serial_p99"),
                                  ("open500", "p50_ms", "open500_p50"), ("open500", "p99_ms", "open500_p99"),
                                  ("stream_serial", "ttft_p50_ms", "ttft_serial_p50"),
                                  ("stream_closed50", "ttft_p50_ms", "ttft_c50_p50")):
            v = med(t.key, sname, fld)
            row[label] = v if t.name == "direct" else v - med(direct, sname, fld)
        row["rps_c50"] = med(t.key, "closed50", "rps")
        row["stream_rps_c50"] = med(t.key, "stream_closed50", "rps")
        row["cpu_c50"] = med(t.key, "closed50", "cpu_us_per_req")
        row["cpu_stream_c50"] = med(t.key, "stream_closed50", "cpu_us_per_req")
        row["errors_c50"] = sum(r["errors"] for s in ("closed50", "stream_closed50") for r in results[t.key].get(s, []))
        row["rss_peak_mb"] = rss.get(t.name.split("-")[0])
        table.append(row)
    return table


def ab_table(results: dict[str, dict[str, list[dict]]], pairs: list[tuple[str, str]]) -> list[dict]:
    """Per A/B pair of result keys and metric: the per-round values (A - B or A / B) and their median."""
    rows = []
    for a_key, b_key in pairs:
        for metric, sname, fld, kind in AB_METRICS:
            a_runs, b_runs = results.get(a_key, {}).get(sname, []), results.get(b_key, {}).get(sname, [])
            per_round = [(a[fld] - b[fld]) if kind == "diff" else (a[fld] / b[fld] if b[fld] else math.nan)
                         for a, b in zip(a_runs, b_runs, strict=False)]
            per_round = [v for v in per_round if not math.isnan(v)]
            if not per_round:
                continue
            m = statistics.median(per_round)
            verdict = None
            if metric == "serial p50":
                verdict = m <= BUDGET_P50_MS
            elif kind == "ratio":
                verdict = m >= BUDGET_RPS
            elif kind == "cost" and metric != "CPU µs/req serial":  # CPU per request bounds saturated throughput
                verdict = m <= 1 / BUDGET_RPS
            rows.append({"pair": a_key.split("/")[1] + (" native" if "native" in a_key else ""), "metric": metric,
                         "kind": kind, "per_round": per_round, "median": m,
                         "a_median": statistics.median(r[fld] for r in a_runs),
                         "b_median": statistics.median(r[fld] for r in b_runs), "within_budget": verdict})
    return rows


def print_tables(table: list[dict], ab: list[dict], a: argparse.Namespace, labels: dict[str, str]) -> None:
    print()
    print(f"stub latency {a.latency * 1000:.0f} ms; figures for gateways are ADDED over direct (ms), medians of "
          f"{a.rounds} alternating round(s)")
    print("| target | api | " + " | ".join(c[0] for c in COLS) + " |")
    print("|" + "---|" * (len(COLS) + 2))
    for r in table:
        print(f"| {r['label']} | {r['api']} | " + " | ".join(fmt(r[k], d) for _, k, d in COLS) + " |")
    if not ab:
        return
    print()
    print(f"A/B: A = {labels['A']}; B = {labels['B']}. Latency: A - B in ms (the direct run cancels out); "
          f"throughput and the gateway's CPU time per request: A / B. Per round, then the median; budget: serial "
          f"p50 <= +{BUDGET_P50_MS} ms, throughput >= {BUDGET_RPS:.0%} of B (CPU per request under load <= "
          f"{1 / BUDGET_RPS:.3f} x B, the same bound for a saturated gateway, and far less noisy on a shared machine).")
    print("| api | metric | A | B | per round | median | within budget |")
    print("|---|---|---|---|---|---|---|")
    for r in ab:
        d = 3
        unit = " ms" if r["kind"] == "diff" else ""
        ab_dec = 2 if r["kind"] == "diff" else 0
        rounds = ", ".join(f"{v:+.{d}f}" if r["kind"] == "diff" else f"{v:.{d}f}" for v in r["per_round"])
        med = f"{r['median']:+.{d}f}{unit}" if r["kind"] == "diff" else f"{r['median']:.{d}f}"
        ok = "-" if r["within_budget"] is None else ("yes" if r["within_budget"] else "NO")
        print(f"| {r['pair']} | {r['metric']} | {fmt(r['a_median'], ab_dec)} | {fmt(r['b_median'], ab_dec)} | "
              f"{rounds} | {med} | {ok} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter runs (4 s, 400 requests)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (even numbers balance the order)")
    ap.add_argument("--latency", type=float, default=0.0, help="stub latency in seconds (0 or 0.05)")
    ap.add_argument("--only", default="", help="comma list of targets to keep besides direct: tierwise (with its "
                    "baseline), bare, litellm, ccr, portkey")
    ap.add_argument("--scenarios", default="", help="comma list of scenarios (serial, open500, closed50, "
                    "stream_serial, stream_closed50); all by default")
    ap.add_argument("--tierwise-src", default=str(ROOT), help="tierwise tree A: a checkout, its src/, or a git "
                    "revision (default: this checkout)")
    ap.add_argument("--baseline-src", default="", help="tierwise tree B, measured in the same rounds as A "
                    "(same forms as --tierwise-src)")
    ap.add_argument("--fresh", choices=("auto", "yes", "no"), default="auto", help="start new tierwise "
                    "processes every round (auto: yes with --baseline-src)")
    ap.add_argument("--no-native", action="store_true", help="skip tierwise's Anthropic-to-Anthropic rows")
    a = ap.parse_args()
    wanted = set(a.only.split(",")) if a.only else {"tierwise", "bare", "litellm", "ccr", "portkey"}
    work = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    src_a, label_a = resolve_src(a.tierwise_src, work)
    src_b, label_b = resolve_src(a.baseline_src, work) if a.baseline_src else (None, "")
    labels = {"A": label_a, "B": label_b}
    fresh = a.fresh == "yes" or (a.fresh == "auto" and src_b is not None)
    print(f"tierwise A: {label_a}" + (f"\ntierwise B: {label_b}" if src_b else ""), flush=True)
    stub = start_stub(a.latency)
    procs: dict[str, Proc | None] = {}
    targets: list[Target] = []
    results: dict[str, dict[str, list[dict]]] = {}
    try:
        base = lambda p: f"http://127.0.0.1:{p.port}"  # noqa: E731
        stub_url = base(stub)
        targets += [Target("direct", "openai", stub_url, "m", "direct"),
                    Target("direct", "anthropic", stub_url, "m", "direct")]
        trees = [("tierwise", src_a, "A")] + ([("baseline", src_b, "B")] if src_b else [])
        for name, src, tag in trees:
            tw = procs[name] = start_tierwise(stub, work / name, src, name)
            who = f"**tierwise** ({tag})" if tag == "A" else f"tierwise baseline ({tag})"
            if not src_b:
                who = "**tierwise**"
            targets += [Target(name, "openai", base(tw), "m", who, proc=tw),
                        # Anthropic client, OpenAI-compatible upstream: the translation path ccr also takes.
                        Target(name, "anthropic", base(tw), "claude-haiku-4-5", f"{who} (translated)", proc=tw)]
            if not a.no_native:  # Anthropic client, Anthropic upstream: the path Portkey's Anthropic row takes
                targets.append(Target(f"{name}-native", "anthropic", base(tw), "claude-sonnet-4-5", f"{who} (native)",
                                      proc=tw))
        c: Proc | None
        if "bare" in wanted and (c := start_bare(stub)):
            procs["bare"] = c
            targets.append(Target("bare", "openai", base(c), "m", "bare pass-through (floor)", proc=c))
        if "litellm" in wanted and (c := start_litellm(stub, work)):
            procs["litellm"] = c
            targets.append(Target("litellm", "openai", base(c), "m", "LiteLLM proxy", proc=c))
        if "ccr" in wanted and (c := start_ccr(stub, work)):
            procs["ccr"] = c
            targets.append(Target("ccr", "anthropic", base(c), "claude-haiku-4-5", "claude-code-router (translated)",
                                  proc=c))
        if "portkey" in wanted and (c := start_portkey()):
            procs["portkey"] = c
            targets += [Target("portkey", "openai", base(c), "stub-model", "Portkey gateway",
                               portkey_headers(stub, "openai"), c),
                        Target("portkey", "anthropic", base(c), "stub-model", "Portkey gateway (native)",
                               portkey_headers(stub, "anthropic"), c)]
        if "tierwise" not in wanted:
            targets = [t for t in targets if not t.name.startswith(("tierwise", "baseline"))]
        missing = wanted - {t.name for t in targets} - {"tierwise"}
        if missing:
            print(f"not installed (bash bench/install_comparators.sh): {', '.join(sorted(missing))}", flush=True)
        for t in list(targets):
            problem = forwards(t)
            if problem:
                print(f"DROPPED {t.key}: {problem}", flush=True)
                targets.remove(t)
        print("forwarding checked (plain and streamed answers carry the stub's text): "
              + ", ".join(t.key for t in targets), flush=True)
        chosen = [(n, kw) for n, kw in scenarios(a.quick) if not a.scenarios or n in a.scenarios.split(",")]
        rss_old: dict[str, float] = {}
        for rnd in range(a.rounds):
            if rnd and fresh:
                # New tierwise processes each round: a process's own luck (memory layout, what its
                # collector met) then averages out over rounds instead of siding with A or B.
                for name, src, _ in trees:
                    old = procs[name]
                    assert old is not None
                    rss_old[name] = max(rss_old.get(name, 0.0), rss_mb(old.p.pid))
                    old.stop()
                    tw = procs[name] = start_tierwise(stub, work / f"{name}-{rnd}", src, name)
                    for t in targets:
                        if t.name in (name, f"{name}-native"):
                            t.url, t.proc = base(tw), tw
                            if problem := forwards(t):
                                raise RuntimeError(f"{t.key} after its restart: {problem}")
            order = targets if rnd % 2 == 0 else list(reversed(targets))
            for sname, kw in chosen:
                for t in order:
                    cpu0 = cpu_s(t.proc.p.pid) if t.proc else math.nan
                    r = load(t, **kw)
                    # The gateway's own CPU time per request: much less disturbed than wall-clock figures by
                    # other work on a shared machine (includes the load generator's warm-up requests).
                    r["cpu_us_per_req"] = ((cpu_s(t.proc.p.pid) - cpu0) * 1e6 / max(1, r["requests"] + 50)
                                           if t.proc else math.nan)
                    results.setdefault(t.key, {}).setdefault(sname, []).append(r)
                    print(f"round {rnd} {sname:16s} {t.key:28s} p50={r['p50_ms']:.2f}ms p99={r['p99_ms']:.2f}ms "
                          f"ttft50={r['ttft_p50_ms']:.2f} rps={r['rps']:.0f} cpu/req={r['cpu_us_per_req']:.0f}us "
                          f"err={r['errors']}", flush=True)
        rss = {n: max(rss_mb(q.p.pid), rss_old.get(n, 0.0)) for n, q in procs.items() if q}
    finally:
        for q in procs.values():
            if q:
                q.stop()
        stub.stop()
        shutil.rmtree(work, ignore_errors=True)

    table = overhead_table(results, targets, rss)
    pairs = [(f"tierwise{s}/{api}", f"baseline{s}/{api}") for s, api in (("", "openai"), ("", "anthropic"),
                                                                           ("-native", "anthropic"))]
    ab = ab_table(results, pairs) if src_b else []
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"gateway_overhead_{int(a.latency * 1000)}ms.json").write_text(json.dumps(
        {"args": vars(a), "labels": labels, "table": table, "ab": ab, "raw": results}, indent=1))
    print_tables(table, ab, a, labels)


if __name__ == "__main__":
    main()
