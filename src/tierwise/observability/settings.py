"""The `observability:` section of tierwise.yaml: metrics, traces and the dashboard, each off by default."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tierwise.redis_url import RedisUrl


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricsConfig(_Strict):
    enabled: bool = Field(False, description="serve Prometheus metrics at GET /metrics")
    max_label_values: int = Field(
        200, ge=1, le=10_000,
        description="distinct values kept per label (models, routes, ...); more become `other`")


class TracingConfig(_Strict):
    endpoint: str | None = Field(
        None, description="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces; unset: no spans")
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0, description="share of requests traced (by trace id; with "
                                "`trust_traceparent`, a caller's sampled flag decides first)")
    trust_traceparent: bool = Field(
        False, description="honour a client's incoming W3C `traceparent` (join its trace, follow its sampled flag): "
        "only for callers you trust (your own services behind the gateway). Off, the header is ignored: a client "
        "could otherwise force every request it sends to be traced whatever `sample_ratio` says, and pick trace ids")
    capture_content: bool = Field(
        False, description="put request messages on spans (never for privacy-protected requests)")
    service_name: str = Field("tierwise", min_length=1, max_length=100, description="OTel service.name")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="extra HTTP headers for the OTLP receiver (e.g. auth, ${ENV})")
    queue_size: int = Field(4096, ge=1, le=1_000_000, description="finished requests waiting for export; more are dropped and counted")
    queue_bytes: int = Field(32 * 1024 * 1024, ge=65_536, description="bytes of spans held for export at most (a "
                             "batch is sealed at an eighth of it); a batch past it is dropped and counted (captured "
                             "content: up to ~66 kB a request)")
    batch_size: int = Field(512, ge=1, le=100_000, description="requests per OTLP POST")
    interval: float = Field(1.0, gt=0, le=60, description="seconds between exports")
    timeout: float = Field(5.0, gt=0, le=60, description="seconds per OTLP POST")

    @field_validator("endpoint")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL (OTLP over HTTP)")
        return v


class DashboardConfig(_Strict):
    enabled: bool = Field(False, description="serve the dashboard at GET /dashboard")
    viewer_keys_env: list[str] = Field(
        default_factory=list,
        description="environment variables holding read-only keys: they open /dashboard and /metrics, nothing else")
    client_keys: Literal["own", "none"] = Field(
        "own", description="what a gateway key (server.api_keys_env) reads of the dashboard: `own` its own "
        "requests and traces, `none` nothing (admin and viewer keys read everything)")
    recent: int = Field(2000, ge=10, le=100_000, description="recent requests kept in memory for the live view")
    stream_per_second: int = Field(
        50, ge=1, le=1000, description="requests per second sent to each live stream; above it the stream is sampled")
    presence_redis_url: RedisUrl | None = Field(
        None, description="Redis holding worker presence keys (tierwise:presence:*); unset: no workers shown")
    presence_refresh: float = Field(
        0.5, gt=0, le=60, description="seconds the worker list read from Redis is reused: the topology panel and "
        "tierwise_workers_present see a worker come or go at most this much later")


class ObservabilityConfig(_Strict):
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
