"""Who may read what (session 38 sweep): a gateway with two client keys (alice, bob), an admin and a viewer key,
the dashboard, /metrics and the cache on; alice makes one request; each admin, feedback, dashboard and listing
endpoint is then asked by no key, an unknown key, bob and the viewer. Prints the status each got and whether the
answer held alice's conversation (her prompt or the answer she got): nobody but alice and an admin may read it.

    PYTHONPATH=src:. HF_HUB_OFFLINE=1 .venv/bin/python bench/authz_matrix.py
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import httpx2 as httpx

from tests.doubles import OpenAIDouble, Reply
from tests.harness import GatewayServer, make_config

KEYS = {"BENCH_KA": "key-alice-123456", "BENCH_KB": "key-bob-6543210", "BENCH_ADM": "key-admin-999999",
        "BENCH_VW": "key-view-888888"}
PROMPT, ANSWER = "alice private question", "alice's secret answer"


def main() -> None:
    up = OpenAIDouble().start()
    up.default = Reply(text=ANSWER)
    os.environ.update(KEYS)
    tmp = pathlib.Path(tempfile.mkdtemp())
    cfg = make_config({
        "ledger": {"path": str(tmp / "l.db")},
        "server": {"api_keys_env": ["BENCH_KA", "BENCH_KB"], "admin_keys_env": ["BENCH_ADM"]},
        "providers": {"p": {"kind": "openai", "base_url": up.url + "/v1"}},
        "models": {"m": {"provider": "p", "model": "x"}},
        "routes": {"main": {"policy": "fallback", "targets": ["m"]}},
        "cache": {"enabled": True},
        "observability": {"metrics": {"enabled": True},
                          "dashboard": {"enabled": True, "viewer_keys_env": ["BENCH_VW"]}}}, tmp)
    g = GatewayServer(cfg).start()
    try:
        r = httpx.post(g.url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {KEYS['BENCH_KA']}"},
                       json={"model": "main", "messages": [{"role": "user", "content": PROMPT}]})
        rid = r.headers["x-tierwise-request-id"]
        g.flush()
        callers = {"no key": {}, "unknown key": {"authorization": "Bearer nope-nope-nope"},
                   "bob": {"authorization": f"Bearer {KEYS['BENCH_KB']}"},
                   "viewer": {"authorization": f"Bearer {KEYS['BENCH_VW']}"}}
        endpoints = [("GET", "/v1/tierwise/budgets", None), ("GET", "/v1/tierwise/blackboard", None),
                     ("GET", "/v1/tierwise/cache", None), ("POST", "/v1/tierwise/cache/invalidate", {}),
                     ("POST", "/v1/tierwise/feedback", {"request_id": rid, "rating": "poor"}),
                     ("GET", "/v1/tierwise/approvals", None), ("GET", "/metrics", None), ("GET", "/dashboard", None),
                     ("GET", "/dashboard/api/recent", None), ("GET", f"/dashboard/api/trace?id={rid}", None),
                     ("GET", "/dashboard/api/summary", None), ("GET", "/dashboard/api/topology", None),
                     ("GET", "/dashboard/api/role", None), ("GET", "/openapi.json", None), ("GET", "/v1/models", None),
                     ("GET", "/health", None)]
        print("| endpoint | " + " | ".join(callers) + " |")
        print("|---|" + "---|" * len(callers))
        leaks = 0
        for method, path, body in endpoints:
            cells = []
            for headers in callers.values():
                resp = httpx.request(method, g.url + path, headers=headers, json=body, timeout=30)
                leak = PROMPT in resp.text or ANSWER in resp.text
                leaks += leak
                cells.append(f"{resp.status_code}{' **conversation**' if leak else ''}")
            print(f"| {method} {path.split('?')[0]} | " + " | ".join(cells) + " |")
        print(f"\nanswers holding alice's conversation: {leaks} of {len(endpoints) * len(callers)}")
    finally:
        g.stop()
        up.stop()


if __name__ == "__main__":
    main()
