"""Time for `tierwise serve` to be ready, from process start: until it prints `serving on` and until its
`/health` answers, on the built-in starter config (no tierwise.yaml, no keys, no local model server: a
first run).

    python bench/serve_startup.py [--runs 11] [--baseline-src ../main/src] [-c tierwise.yaml]

Each run is a fresh process. With --baseline-src the two trees run in turn, so a busy machine slows both
alike; the median of each and their ratio are printed, with the CPU time the process used until `serving
on` (from /proc: steadier than wall time when other work shares the machine). Compile both trees first
(`python -m compileall -q SRC`): with PYTHONDONTWRITEBYTECODE set, a tree without .pyc files pays ~0.1 s
of compiling at every start, which swamps what is measured."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (Linux /proc), steadier than wall time on a busy host."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def once(src: str, config: str | None) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as d:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "TIERWISE_CONFIG"}
        env["PYTHONPATH"] = src
        env["HOME"] = d
        argv = [sys.executable, "-m", "tierwise.cli", "serve", "--port", "0"] + (["-c", config] if config else [])
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=d, env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            while "serving on" not in (line := proc.stderr.readline()):
                if not line:
                    raise SystemExit("serve exited before serving")
            said = time.perf_counter() - t0
            cpu = _cpu_s(proc.pid)
            url = line.split("serving on ")[1].split()[0]
            while True:
                try:
                    with urllib.request.urlopen(url + "/health", timeout=1):
                        break
                except OSError:
                    time.sleep(0.005)
            return said, time.perf_counter() - t0, cpu
        finally:
            proc.terminate()
            proc.communicate(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--baseline-src", default=None)
    ap.add_argument("-c", "--config", default=None)
    a = ap.parse_args()
    trees = {"this tree": str(HERE / "src")}
    if a.baseline_src:
        trees["baseline"] = str(Path(a.baseline_src).resolve())
    got: dict[str, list[tuple[float, float, float]]] = {k: [] for k in trees}
    for _ in range(a.runs):
        for name, src in trees.items():
            got[name].append(once(src, a.config))
    med = {}
    for name, runs in got.items():
        said = statistics.median(r[0] for r in runs) * 1000
        ready = statistics.median(r[1] for r in runs) * 1000
        cpu = statistics.median(r[2] for r in runs) * 1000
        med[name] = (said, ready, cpu)
        print(f"{name:10s} 'serving on' {said:7.1f} ms  /health answers {ready:7.1f} ms  CPU to 'serving on' "
              f"{cpu:6.0f} ms  (median of {len(runs)})")
    if "baseline" in med:
        print(f"ratio this/baseline: 'serving on' {med['this tree'][0] / med['baseline'][0]:.3f}, "
              f"/health {med['this tree'][1] / med['baseline'][1]:.3f}, CPU {med['this tree'][2] / med['baseline'][2]:.3f}")


if __name__ == "__main__":
    main()
