from __future__ import annotations

from typing import Any

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import anthropic_up, gateway, openai_up, two_tier  # noqa: F401 (fixtures)
from tests.harness import GatewayServer

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
