"""Time for `tierwise mcp` (stdio) to answer MCP `initialize` and then `tools/list`, from process start.

Claude Code starts the server and sends `initialize` at once; a server slower than the client's
first turn leaves that turn without the tools. This measures what the client waits for.

    python bench/mcp_startup.py [-c tierwise.yaml] [--runs 7] [--baseline-src ../main/src]

Prints the median and the range over the runs (each a fresh process, so imports are cold in
Python's sense, warm in the OS file cache after the first). With --baseline-src the two trees
run in turn, so a busy machine slows both alike."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
CALL = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_ensembles", "arguments": {}}}


def _send(proc: subprocess.Popen[bytes], msg: dict) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(msg).encode() + b"\n")
    proc.stdin.flush()


def _read(proc: subprocess.Popen[bytes], want_id: int) -> dict:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the server closed stdout: " + (proc.stderr.read().decode()[-2000:] if proc.stderr else ""))
        msg = json.loads(line)
        if msg.get("id") == want_id:
            return msg


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) the process has used so far, from /proc (nan elsewhere): unlike the wall
    times, it hardly moves with the machine's load."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def once(argv: list[str], cwd: str) -> tuple[float, float, int, float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _send(proc, INIT)  # sent at once, as Claude Code does: it waits in the pipe until the server reads
        _read(proc, 1)
        t_init = time.perf_counter() - t0
        cpu_init = _cpu_s(proc.pid)
        _send(proc, INITIALIZED)
        _send(proc, LIST)
        tools = _read(proc, 2)["result"]["tools"]
        t_list = time.perf_counter() - t0
        _send(proc, CALL)
        _read(proc, 3)
        t_call = time.perf_counter() - t0
    finally:
        proc.kill()
        proc.wait()
    return t_init, t_list, len(tools), t_call, cpu_init


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--config", default=None, help="tierwise.yaml (default: the ensemble examples' config)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--baseline-src", default=None, metavar="DIR",
                    help="also time the code in DIR (another checkout's src/), run for run in turn with this one, "
                         "so both see the same machine load")
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    config = args.config or str(here / "examples" / "ensembles" / "tierwise.yaml")
    trees = {"this tree": str(here / "src")}
    if args.baseline_src:
        trees["baseline"] = args.baseline_src
    results: dict[str, list[tuple[float, float, int, float, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as project:
        argv = [sys.executable, "-m", "tierwise.cli", "mcp", "-c", config, "--project", project]
        for i in range(args.runs + 1):  # the first round warms the OS file cache
            for name, src in trees.items():
                os.environ["PYTHONPATH"] = src
                r = once(argv, project)
                if i:
                    results[name].append(r)
    print(f"tierwise mcp over stdio, {args.runs} runs each, python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    for name, runs in results.items():
        print(f"{name} ({trees[name]}), {runs[0][2]} tools:")
        for label, k in (("initialize answered", 0), ("tools/list answered", 1), ("first tools/call answered", 3),
                         ("CPU used when initialize was answered", 4)):
            v = [r[k] * 1000 for r in runs]
            print(f"  {label}: median {statistics.median(v):.0f} ms (min {min(v):.0f}, max {max(v):.0f})")


if __name__ == "__main__":
    main()
