from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx

from tests.budgets.conftest import REDIS_URL, redis_prefix  # noqa: F401 (the same fixtures)
from tests.gateway.conftest import anthropic_up, gateway, openai_up, two_tier  # noqa: F401
from tests.harness import needs_redis  # noqa: F401 (imported by the approvals tests)

ADMIN = "admin-secret-key"
GW_KEY = "gw-secret-key"
PATH = "/v1/tierwise/approvals"


def admin_get(url: str, key: str = ADMIN) -> httpx.Response:
    return httpx.get(url + PATH, headers={"authorization": f"Bearer {key}"}, timeout=10)


def decide(url: str, id: str, decision: str, reason: str | None = None, key: str = ADMIN) -> httpx.Response:
    return httpx.post(url + PATH, headers={"authorization": f"Bearer {key}"}, timeout=10,
                      json={"id": id, "decision": decision, "reason": reason})


def wait_pending(url: str, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The pending approvals once there are `n` (a request in flight reaches its gate in a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        pending = admin_get(url).json()["pending"]
        if len(pending) >= n or time.monotonic() > deadline:
            return pending  # type: ignore[no-any-return]
        time.sleep(0.02)


def approvals_config(**gate: Any) -> dict[str, Any]:
    return {"routes": {"main": {"timeout": "30s", **gate}}}


