from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import anthropic_up, gateway, openai_up, two_tier  # noqa: F401 (fixtures)
from tests.harness import GatewayServer, free_port

MSG = [{"role": "user", "content": "What is 6 * 7?"}]
CHECKED = [{"type": "arithmetic", "min_equations": 1}]


def observed_routes() -> dict[str, Any]:
    return {
        "main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
        "casc": {"policy": "cascade", "tiers": ["local", "frontier"], "verifiers": CHECKED},
        "adv": {"policy": "advisor", "executor": "local", "advisor": "frontier", "max_uses": 1},
    }


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`/metrics` as {(sample name, sorted labels): value}."""
    r = httpx.get(url + "/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    t = 0.0
    for (n, ls), v in samples.items():
        if n == name and all(dict(ls).get(k) == v2 for k, v2 in labels.items()):
            t += v
    return t


def flush(g: GatewayServer) -> None:
    g.flush()


def serve_processes(tmp_path: Path, cfg: dict[str, Any], n: int = 2) -> tuple[subprocess.Popen[bytes], str]:
    """`tierwise serve --workers n` on `cfg` (metrics on), once all n processes answer /metrics.
    Its temp dir is private to the test (other runs on the machine stay out of it)."""
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TMPDIR": str(private_tmp)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "tierwise.cli", "serve", "-c", str(tmp_path / "tierwise.yaml"),
                             "--port", str(port), "--workers", str(n)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if len([k for k in scrape(url) if k[0] == "tierwise_worker_requests"]) == n:
                return proc, url
        except (httpx.TransportError, AssertionError):
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "serve exited")
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.1)
