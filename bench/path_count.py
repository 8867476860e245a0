"""Per request, as a count the machine's load does not move: what each client path through the gateway
costs, for one tierwise tree or two (A/B). The gateway is bench/gateway_overhead.py's (the config its
wall-clock A/B runs); requests go one at a time over one connection, the bench's own bodies:

  openai            OpenAI chat client, OpenAI upstream (the upstream's bytes relayed)
  anthropic         Anthropic Messages client, OpenAI upstream (translated both ways)
  native            Anthropic client, Anthropic upstream (the upstream's bytes relayed)
  ...-stream        the same, streamed (`"stream": true`, the stub's 50 events)

Counted: Python bytecodes per request, per function (bench/opcode_probe: sys.settrace opcode events in
the gateway's main thread), or with `--instructions` the whole process's user-space instructions under
valgrind's callgrind. Each tree's gateway is warmed on every path, then counted in `--passes` passes
over the paths (reversed every other pass), `--requests` requests per path and pass.

    PYTHONPATH=src .venv/bin/python bench/path_count.py --baseline-src /tmp/base_anth/src
    PYTHONPATH=src .venv/bin/python bench/path_count.py --instructions --baseline-src /tmp/base_anth/src
    PYTHONPATH=src .venv/bin/python bench/path_count.py --paths anthropic --top 20 --baseline-src 05797df

A tree (`--tierwise-src`, `--baseline-src`) is a checkout, its src/ folder or a git revision, as in
bench/gateway_overhead.py (a revision is extracted without its C extensions built: build them in a
checkout for a fair A/B). With a baseline, each path's per-function difference A - B follows (bytecodes by
Python function; instructions by C function, callgrind_annotate's view, in which Python code is the interpreter).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from budgets_overhead import callgrind_window  # noqa: E402
from gateway_overhead import Proc, Target, forwards, resolve_src, start_stub, start_tierwise  # noqa: E402
from loadgen import request_for  # noqa: E402
from opcode_count import opcode_window, probe_env  # noqa: E402

# path -> (client API, model the client names: `m` and `*haiku*` route to the OpenAI upstream, `*sonnet*` to the Anthropic one)
PATHS = {"openai": ("openai", "m"), "anthropic": ("anthropic", "claude-haiku-4-5"),
         "native": ("anthropic", "claude-sonnet-4-5")}


def sender(port: int, path: str, n: int):  # noqa: ANN201
    """A function that sends `n` requests of `path` one at a time over one connection, each answered 200."""
    api, model = PATHS[path.removesuffix("-stream")]
    url, body, headers = request_for(api, path.endswith("-stream"), model)

    def send() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for _ in range(n):
                conn.request("POST", url, body, headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError(f"{path}: HTTP {r.status}")
        finally:
            conn.close()
    return send


def by_function(functions: dict[str, list[int]]) -> collections.Counter:
    """Bytecodes by `file:qualname` (the probe's keys also carry the first line, which moves between trees)."""
    out: collections.Counter = collections.Counter()
    for key, (ops, _calls) in functions.items():
        file, _line, name = key.split(":", 2)
        out[f"{file}:{name}"] += ops
    return out


def annotate(dump: Path) -> collections.Counter:
    """Instructions by C function (`file:function`, what callgrind_annotate prints; the interpreter's
    own loop stands for all Python code) in a callgrind dump."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", str(dump)],
                         capture_output=True, text=True, check=True).stdout
    found: collections.Counter = collections.Counter()
    for line in out.splitlines():
        if m := re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*?)(?: \[.*\])?$", line):
            if "PROGRAM TOTALS" not in m[2]:
                file, _, function = m[2].rpartition(":")
                found[f"{file.rsplit('/', 1)[-1]}:{function}"] += int(m[1].replace(",", ""))
    return found


def count_tree(src: Path, stub: Proc, paths: list[str], a: argparse.Namespace, work: Path, name: str
               ) -> tuple[dict[str, list[float]], dict[str, collections.Counter]]:
    """Per path: the count per request of each pass, and the per-function total over the passes."""
    work.mkdir(parents=True)
    log, cg = work / "ops", work / "gw.cg"
    if a.instructions:
        gw = start_tierwise(stub, work, src, name, wrapper=("valgrind", "--tool=callgrind", "--instr-atstart=no",
                                                           f"--callgrind-out-file={cg}"))
    else:
        gw = start_tierwise(stub, work, src, name, extra_env=probe_env(src, log))
    per_pass: dict[str, list[float]] = {p: [] for p in paths}
    funcs: dict[str, collections.Counter] = {p: collections.Counter() for p in paths}
    try:
        for p in paths:
            api, model = PATHS[p.removesuffix("-stream")]
            problem = forwards(Target(name, api, f"http://127.0.0.1:{gw.port}", model, name))
            if problem:
                raise SystemExit(f"{name} {p}: {problem}")
            sender(gw.port, p, a.warm)()
        if a.instructions:
            subprocess.run(["callgrind_control", "-i", "on", str(gw.p.pid)], capture_output=True, check=True)
        for k in range(a.passes):
            for p in paths if k % 2 == 0 else reversed(paths):
                send = sender(gw.port, p, a.requests)
                if a.instructions:
                    total, dump = callgrind_window(gw.p.pid, cg, send)
                    per_pass[p].append(total / a.requests)
                    funcs[p].update(annotate(dump))
                else:
                    res = opcode_window(gw, log, send)
                    per_pass[p].append(sum(v[0] for v in res["functions"].values()) / a.requests)
                    funcs[p].update(by_function(res["functions"]))
                print(f"{name} pass {k + 1} {p:17s} {per_pass[p][-1]:12,.1f} per request", file=sys.stderr, flush=True)
    finally:
        gw.stop()
    return per_pass, funcs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tierwise-src", default=str(HERE.parent), help="tree A (default: this checkout)")
    ap.add_argument("--baseline-src", default="", help="tree B, counted the same way, for A/B")
    ap.add_argument("--paths", default="openai,openai-stream,anthropic,anthropic-stream,native,native-stream")
    ap.add_argument("--requests", type=int, default=200, help="counted requests per path and pass")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--warm", type=int, default=50, help="uncounted requests per path first")
    ap.add_argument("--instructions", action="store_true", help="callgrind instructions instead of bytecodes")
    ap.add_argument("--top", type=int, default=12, help="per path, the functions whose bytecodes moved most (A/B)")
    a = ap.parse_args()
    paths = a.paths.split(",")
    if unknown := [p for p in paths if p.removesuffix("-stream") not in PATHS]:
        raise SystemExit(f"unknown paths: {unknown}")
    if a.instructions and not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind")
    work = Path(tempfile.mkdtemp(prefix="tierwise-pathcount-"))
    trees = [("A", *resolve_src(a.tierwise_src, work))]
    if a.baseline_src:
        trees.append(("B", *resolve_src(a.baseline_src, work)))
    stub = start_stub(0.0)
    counts, funcs = {}, {}
    try:
        for tag, src, label in trees:
            print(f"tree {tag}: {label}", flush=True)
            counts[tag], funcs[tag] = count_tree(src, stub, paths, a, work / tag, f"tierwise-{tag}")
    finally:
        stub.stop()
        shutil.rmtree(work, ignore_errors=True)

    unit = "instructions" if a.instructions else "bytecodes"
    med = {t: {p: statistics.median(v) for p, v in c.items()} for t, c in counts.items()}
    print(f"\n{unit} per request ({a.requests} one-at-a-time requests per path and pass; the passes in brackets)\n")
    if len(trees) == 1:
        print("| path | A |\n|---|---:|")
        for p in paths:
            print(f"| {p} | {med['A'][p]:,.0f} ({', '.join(f'{x:,.0f}' for x in counts['A'][p])}) |")
        return
    print("| path | A | B | A − B | A / B |\n|---|---:|---:|---:|---:|")
    for p in paths:
        x, y = med["A"][p], med["B"][p]
        print(f"| {p} | {x:,.0f} ({', '.join(f'{v:,.0f}' for v in counts['A'][p])}) "
              f"| {y:,.0f} ({', '.join(f'{v:,.0f}' for v in counts['B'][p])}) | {x - y:+,.0f} | {x / y:.4f} |")
    if not a.top:
        return
    total = a.requests * a.passes
    for p in paths:
        fa, fb = funcs["A"][p], funcs["B"][p]
        moved = sorted(set(fa) | set(fb), key=lambda k: -abs(fa[k] - fb[k]))[:a.top]
        print(f"\n{p}: {unit} per request by function, A − B (largest moves)\n")
        print("| A − B | A | B | function |\n|---:|---:|---:|---|")
        for k in moved:
            if fa[k] != fb[k]:
                print(f"| {(fa[k] - fb[k]) / total:+,.1f} | {fa[k] / total:,.1f} | {fb[k] / total:,.1f} | {k} |")


if __name__ == "__main__":
    main()
