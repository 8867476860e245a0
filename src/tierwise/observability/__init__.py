"""Observability: Prometheus metrics, OpenTelemetry GenAI spans, the dashboard and its data.

The gateway holds one `Observer` (observer.py) and calls it at two seams: when a request
finishes (`Gateway.record`) and when an upstream call is made (to pass `traceparent` on). The
HTTP endpoints (`/metrics`, `/dashboard`, its JSON and event stream) live in endpoints.py.
Everything is off unless the `observability:` section turns it on.
"""

from __future__ import annotations

from typing import Any


def build(gateway: Any) -> Any:
    from tierwise.observability.observer import Observer

    return Observer(gateway.cfg.observability, gateway)
