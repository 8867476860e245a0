"""What a rate-limited upstream costs through a route (review26b): an upstream answering `429, Retry-After: 1`,
a route `fallback: [m]` with `retries: 1` and the breaker's defaults, clients on the openai SDK (max_retries=2,
its default). Counts upstream calls per client request, the breaker's state, and what a client that then waits
the Retry-After it was told gets once the upstream has recovered. Run against any source tree by PYTHONPATH:

    PYTHONPATH=src:. .venv/bin/python bench/rate_limit_breaker.py --requests 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import openai

from tests.doubles import Fail, OpenAIDouble
from tests.harness import GatewayServer, make_config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3, help="client requests while the upstream says 429")
    ap.add_argument("--retry-after", type=float, default=1.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, OpenAIDouble() as up:
        cfg = make_config({"ledger": {"path": "ledger.db"},
                           "providers": {"p": {"kind": "openai", "base_url": up.url + "/v1", "locality": "local"}},
                           "models": {"m": {"provider": "p", "model": "local-model"}},
                           "routes": {"main": {"policy": "fallback", "targets": ["m"], "retries": 1}}}, Path(tmp))
        g = GatewayServer(cfg).start()
        try:
            up.default = Fail(429, retry_after=a.retry_after)
            client = openai.OpenAI(base_url=g.url + "/v1", api_key="t", max_retries=2)
            msgs = [{"role": "user", "content": "hi"}]
            for i in range(a.requests):
                before = len(up.requests)
                t0 = time.monotonic()
                try:
                    client.chat.completions.create(model="main", messages=msgs)
                    said = "200"
                except openai.APIStatusError as e:
                    said = f"{e.status_code} retry-after={e.response.headers.get('retry-after')}"
                print(f"request {i + 1}: {len(up.requests) - before} upstream calls, client got {said} "
                      f"after {time.monotonic() - t0:.1f} s")
            up.default = "recovered"
            once = openai.OpenAI(base_url=g.url + "/v1", api_key="t", max_retries=0)
            for attempt in (1, 2):  # a client that waits the Retry-After it is told, once
                try:
                    once.chat.completions.create(model="main", messages=msgs)
                    print(f"upstream recovered: try {attempt} answered (200)")
                    break
                except openai.APIStatusError as e:
                    ra = e.response.headers.get("retry-after")
                    print(f"upstream recovered: try {attempt} got {e.status_code} retry-after={ra} ({e.message[:60]})")
                    time.sleep(float(ra or 0))
        finally:
            g.stop()


if __name__ == "__main__":
    main()
