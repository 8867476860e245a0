"""`doctor`'s check of the OTLP receiver (`observability.tracing.endpoint`). Before session 32 nothing checked it:
with no collector running, `doctor` said all was well and `serve` logged `otlp: export to the configured endpoint
failed: ClientConnectorError` once a second interval while every span was dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from tierwise.config import Config


def silent_tracing_endpoint(cfg: Config) -> str | None:
    """A warning when nothing accepts a connection at the tracing endpoint's host and port (only those are
    named: the URL may carry a user or a token)."""
    from tierwise.starter import port_open

    endpoint = cfg.observability.tracing.endpoint
    if not endpoint:
        return None
    u = urlsplit(endpoint)
    host = u.hostname or "127.0.0.1"
    port = u.port or (443 if u.scheme == "https" else 80)
    if port_open(port, host, timeout=2.0):
        return None
    return (f"observability.tracing.endpoint: nothing answers at {host}:{port}: every span is dropped (counted in "
            "tierwise_trace_spans_dropped_total) until an OTLP/HTTP receiver listens there, e.g. an OpenTelemetry "
            "Collector or Jaeger on 4318; requests are not slowed or failed by it")
