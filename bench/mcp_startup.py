"""Time for `tierwise mcp` (stdio) to answer MCP `initialize` and then `tools/list`, from process start.

Claude Code starts the server and sends `initialize` at once; a server slower than the client's
first turn leaves that turn without the tools. This measures what the client waits for.

    PYTHONPATH=src python bench/mcp_startup.py [-c tierwise.yaml] [--runs 7]

Prints the median and the range over the runs (each a fresh process, so imports are cold in
Python's sense, warm in the OS file cache after the first)."""

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


def once(argv: list[str], cwd: str) -> tuple[float, float, int, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _send(proc, INIT)  # sent at once, as Claude Code does: it waits in the pipe until the server reads
        _read(proc, 1)
        t_init = time.perf_counter() - t0
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
    return t_init, t_list, len(tools), t_call


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--config", default=None, help="tierwise.yaml (default: the ensemble examples' config)")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    config = args.config or str(Path(__file__).resolve().parents[1] / "examples" / "ensembles" / "tierwise.yaml")
    with tempfile.TemporaryDirectory() as project:
        argv = [sys.executable, "-m", "tierwise.cli", "mcp", "-c", config, "--project", project]
        once(argv, project)  # warm the OS file cache
        runs = [once(argv, project) for _ in range(args.runs)]
    inits, lists, calls = ([r[i] * 1000 for r in runs] for i in (0, 1, 3))
    print(f"tierwise mcp over stdio, {args.runs} runs, {runs[0][2]} tools, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus")
    print(f"  initialize answered: median {statistics.median(inits):.0f} ms (min {min(inits):.0f}, max {max(inits):.0f})")
    print(f"  tools/list answered: median {statistics.median(lists):.0f} ms (min {min(lists):.0f}, max {max(lists):.0f})")
    print(f"  first tools/call answered: median {statistics.median(calls):.0f} ms "
          f"(min {min(calls):.0f}, max {max(calls):.0f})")


if __name__ == "__main__":
    main()
