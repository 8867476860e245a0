"""A reflective route's CPU per request in the gateway, under the route's defaults, for one tierwise tree or two
(A/B): what `bench/reflective_defaults_cost.py` measures of the decision alone, seen from the whole process.

The route (`policy: reflective`, both tiers and the judge on bench/stub_upstream.py, costs fixed) starts from a
learned state: seed 0's replay stream (bench/learning_loop.py) run through a `LearningLoop` built as the route
builds it for `--warm` requests, each request's task type the gateway's own triage of its prompt, its verdicts the
recorded ones; so the gateway's requests meet settled types and a fitted text model, as a route in service does.
Then the next `--requests` prompts of the stream are sent one at a time as OpenAI chat requests, and the gateway
process's CPU time (user + system, with its children) over them is divided by their number; the trees alternate
for `--rounds` rounds, each on a fresh gateway with the same saved state. The stub's answers are no judge's
verdict, so the few requests the loop judges train nothing (the same in both trees: their decisions are the same).

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python bench/reflective_gateway_cpu.py --baseline-src /work/main/src

A tree (`--tierwise-src`, `--baseline-src`) is a checkout, its src/ folder or a git revision (see
bench/gateway_overhead.py; a revision is extracted without its C extensions: give a built checkout instead).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import learning_loop as replay  # noqa: E402
from gateway_overhead import cpu_s, resolve_src, serve_tierwise, start_stub  # noqa: E402
from reflective_defaults_cost import loop_of, step  # noqa: E402

from tierwise.canonical import Message, Request, TextBlock  # noqa: E402
from tierwise.learning.triage import task_type_of  # noqa: E402
from tierwise.policies.reflective import state_path_for  # noqa: E402


def config(stub_port: int, workdir: Path):  # noqa: ANN201
    costs = {"saving_usd": replay.PF - replay.PW, "judge_usd": replay.JUDGE, "shadow_usd": replay.SHADOW}
    return lambda port: f"""
server: {{port: {port}, default_route: main}}
ledger: {{path: {workdir / "ledger.db"}}}
providers:
  stub: {{kind: openai, base_url: "http://127.0.0.1:{stub_port}/v1", locality: local}}
  stub_anthropic: {{kind: anthropic, base_url: "http://127.0.0.1:{stub_port}", locality: remote}}
models:
  m: {{provider: stub, model: stub-model}}
  ref: {{provider: stub_anthropic, model: stub-model, price: {{input: 3, output: 15}}}}
routes:
  main:
    policy: reflective
    local: m
    frontier: ref
    quality_target: 0.75
    boundary_log: {workdir / "moves.jsonl"}
    value: {json.dumps(costs)}
"""


def learned_state(warm: int) -> tuple[dict, list[str]]:
    """The route's saved state after `warm` requests of the replay stream (types by the gateway's triage), and
    the prompts after them."""
    data, _, _ = replay.load_stream(0)
    types = [task_type_of(Request(model="main", messages=[Message("user", [TextBlock(p)])])) for p in data.prompts]
    mt = [g.startswith("mt-bench") for g in data.groups]
    loop = loop_of({})
    loop.route = "main"
    for i in range(warm):
        step(loop, data, types, mt, i)
    return loop.dump(), list(data.prompts[warm:])


def run(src: Path, stub_port: int, scratch: Path, state: dict, prompts: list[str], name: str) -> float:
    """CPU µs per request of a fresh gateway of tree `src` over `prompts`, sent one at a time."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
    state_path_for(workdir / "moves.jsonl", "main").write_text(json.dumps(state))
    proc = serve_tierwise(workdir, config(stub_port, workdir), src, name)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=120)
        headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}

        def send(p: str) -> None:
            body = json.dumps({"model": "main", "messages": [{"role": "user", "content": p}], "max_tokens": 64})
            conn.request("POST", "/v1/chat/completions", body, headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f"{name}: HTTP {r.status}; log {proc.log.name}")

        for p in prompts[:50]:  # warm the process (imports, the first requests' paths)
            send(p)
        cpu0 = cpu_s(proc.p.pid)
        for p in prompts[50:]:
            send(p)
        return (cpu_s(proc.p.pid) - cpu0) * 1e6 / (len(prompts) - 50)
    finally:
        proc.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tierwise-src", default=str(Path(__file__).resolve().parent.parent / "src"))
    ap.add_argument("--baseline-src", default=None)
    ap.add_argument("--warm", type=int, default=3000)
    ap.add_argument("--requests", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="reflective-gateway-cpu-"))
    state, prompts = learned_state(args.warm)
    prompts = prompts[: args.requests + 50]
    trees = [("tierwise", *resolve_src(args.tierwise_src, scratch))]
    if args.baseline_src:
        trees.append(("baseline", *resolve_src(args.baseline_src, scratch)))
    stub = start_stub(0.0)
    got: dict[str, list[float]] = {name: [] for name, _, _ in trees}
    try:
        for r in range(args.rounds):
            for name, src, _ in trees if r % 2 == 0 else trees[::-1]:
                got[name].append(run(src, stub.port, scratch, state, prompts, name))
                print(f"round {r + 1} {name}: {got[name][-1]:.0f} µs CPU per request", flush=True)
    finally:
        stub.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    for name, _src, label in trees:
        print(f"{name} ({label}): {statistics.median(got[name]):.0f} µs CPU per request (median of {args.rounds}; "
              f"{', '.join(f'{x:.0f}' for x in got[name])}), {len(prompts) - 50} requests after 50 to warm")
    if len(trees) == 2:
        a, b = statistics.median(got["tierwise"]), statistics.median(got["baseline"])
        print(f"tierwise - baseline: {a - b:+.0f} µs per request ({a / b:.2f}x)" if not math.isnan(b) else "")


if __name__ == "__main__":
    main()
