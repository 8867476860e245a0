"""Benchmark: a 50-agent fan-out against a stub upstream with fixed latency, versus its critical path.

The ensemble is split -> 50 x item (fan-out) -> synthesise, all through the tierwise core
(Gateway, deployments, OpenAI codec, real HTTP on loopback). Every call waits `--latency`
seconds at the stub, so the critical path (the longest chain of agent latencies) is
3 x latency; the figure is how far above it the whole run lands.

    .venv/bin/python bench/ensemble_fanout.py --latency 0.2 --items 50 --runs 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from gateway_overhead import free_port, wait_port  # noqa: E402

from tests.harness import make_config  # noqa: E402
from tierwise.ensembles.library import Library  # noqa: E402
from tierwise.ensembles.schema import parse_ensemble  # noqa: E402
from tierwise.ensembles.service import EnsembleService  # noqa: E402
from tierwise.gateway import Gateway  # noqa: E402


def gateway_config(url: str) -> dict[str, object]:
    """Two local models on one provider, as an ensemble user would configure a local server."""
    return {
        "ledger": {"enabled": False},
        "providers": {"gpu": {"kind": "openai", "base_url": url + "/v1", "locality": "local",
                              "timeouts": {"connect": 1, "read": 10}}},
        "models": {"small": {"provider": "gpu", "model": "small-model"},
                   "tiny": {"provider": "gpu", "model": "tiny-model"}},
        "routes": {"main": {"policy": "fallback", "targets": ["small"], "retries": 0}},
    }


def critical_path_s(run: object, order: list[list[str]]) -> float:
    """The longest chain of agent latencies; a fan-out agent's latency is its slowest item."""
    total = 0.0
    for level in order:
        worst = 0.0
        for name in level:
            a = run.agent(name)  # type: ignore[attr-defined]
            lat = max(i.latency_ms for i in a.items) if a.items else a.latency_ms
            worst = max(worst, lat)
        total += worst / 1000
    return total


async def main(latency: float, items: int, runs: int) -> dict[str, object]:
    # The stub (bench/stub_upstream.py: raw asyncio + httptools, answers precomputed) runs in its
    # own process, so what is measured is the executor and the tierwise core, not the stub.
    port = free_port()
    stub = subprocess.Popen([sys.executable, str(HERE / "stub_upstream.py"), "--port", str(port),
                             "--latency", str(latency), "--split-items", str(items)])
    tmp = Path(tempfile.mkdtemp())
    try:
        wait_port(port)
        gw = Gateway(make_config(gateway_config(f"http://127.0.0.1:{port}"), tmp))
        svc = EnsembleService(gw, Library(tmp), write_artifacts=False)
        ens = parse_ensemble(f"""
name: fanout
concurrency: {{gpu: {items + 8}}}
agents:
  - {{name: split, model: small, prompt: split, output: json}}
  - {{name: item, model: tiny, fan_out: split}}
  - {{name: synthesise, model: small, depends_on: [item]}}
""")
        await svc.run(ens, "warm-up")  # opens the connection pool
        walls, ratios_stub, ratios_measured = [], [], []
        for _ in range(runs):
            run = await svc.run(ens, "go")
            assert run.status == "ok", [(a.name, a.error) for a in run.agents]
            assert len(run.agent("item").items) == items
            wall = run.latency_ms / 1000
            walls.append(wall)
            ratios_stub.append(wall / (3 * latency) - 1)
            ratios_measured.append(wall / critical_path_s(run, [["split"], ["item"], ["synthesise"]]) - 1)
        await gw.close()
        return {
            "items": items, "latency_s": latency, "runs": runs,
            "critical_path_s": 3 * latency,
            "wall_median_s": round(statistics.median(walls), 4),
            "wall_max_s": round(max(walls), 4),
            "over_critical_path_median_pct": round(100 * statistics.median(ratios_stub), 2),
            "over_critical_path_max_pct": round(100 * max(ratios_stub), 2),
            "over_measured_chain_median_pct": round(100 * statistics.median(ratios_measured), 2),
        }
    finally:
        stub.terminate()
        stub.wait(5)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    try:  # the gateway serves on uvloop; measure on the same loop
        import uvloop

        result = uvloop.run(main(a.latency, a.items, a.runs))
    except ImportError:
        result = asyncio.run(main(a.latency, a.items, a.runs))
    print(json.dumps(result, indent=2))
