"""The `cache:` section of tierwise.yaml: backend, bounds, TTL, and which routes may use which tier.

Off by default: without `cache.enabled: true` the request path does not change at all. A route
is cached only when it is listed under `cache.routes` (or `cache.all_routes` is set); each route
says whether sampled answers (temperature > 0, or no temperature: the upstream's default samples)
may be reused and whether its requests may use the semantic tier.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierwise.redis_url import RedisUrl


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RouteCache(_Strict):
    """How one route uses the cache."""

    exact: bool = Field(True, description="reuse answers to requests identical in everything that can change "
                        "the answer")
    sampled: bool = Field(False, description="also reuse answers to sampled requests (temperature > 0 or no "
                          "temperature given); off: only temperature 0 answers are reused")
    ttl: float | None = Field(None, gt=0, le=365 * 86400, description="seconds an entry lives (default cache.ttl)")
    semantic: bool = Field(False, description="answer a new question from a cached answer to a question with the "
                           "same meaning (the verifier decides; same scope, route and settings only)")
    semantic_tools: bool = Field(False, description="let the semantic tier serve requests that carry tools or "
                                 "tool results, or answers that call tools (off: such requests are exact-only)")
    vary_headers: list[str] = Field(default_factory=list, description="extra request headers whose values are "
                                    "part of the key (for rules that route on custom headers)")


class SemanticConfig(_Strict):
    model: str = Field("all-MiniLM-L6-v2", description="local sentence-embedding model (the `embeddings` extra)")
    max_false_hit_rate: Literal[0.005, 0.01, 0.02, 0.05] = Field(  # type: ignore[valid-type]
        0.01, description="the verifier's operating point: the share of semantic lookups (a new question and its "
        "nearest cached one) that may be answered with a wrong answer, as calibrated on held-out labelled pairs "
        "(docs/cache.md)")
    verifier_path: str | None = Field(None, description="a verifier trained on your own labelled pairs "
                                      "(`tierwise cache train-verifier`); default: the shipped one")
    max_entries: int = Field(10_000, ge=1, le=1_000_000, description="questions indexed per process")
    max_question_chars: int = Field(2000, ge=16, le=100_000, description="longer questions are not embedded")


class CacheConfig(_Strict):
    enabled: bool = Field(False, description="turn the answer cache on")
    backend: Literal["memory", "sqlite", "redis"] = Field(
        "memory", description="memory: this process; sqlite: one node, survives restarts; redis: shared by replicas")
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="bytes of stored answers (least recently used go "
                           "first; redis: shared by every replica on the prefix)")
    max_entry_bytes: int = Field(1024 * 1024, ge=256, description="a larger answer (or stream) is not stored")
    ttl: float = Field(3600.0, gt=0, le=365 * 86400, description="seconds an entry lives")
    sqlite_path: str = Field("tierwise-cache.db", description="sqlite backend file (relative: to the config's folder)")
    redis_url: RedisUrl = Field("redis://127.0.0.1:6379/0", description="redis backend URL")
    redis_prefix: str = Field("tierwise:cache:", min_length=1, max_length=100, description="redis key prefix")
    redis_timeout: float = Field(0.5, gt=0, le=30, description="seconds a redis call may take; on failure the "
                                 "request goes on uncached (a cache never fails a request)")
    redis_signing_key_env: str | None = Field(None, description="environment variable holding a secret (16+ "
                                              "characters, the same on every gateway of the prefix): each Redis "
                                              "entry carries an HMAC-SHA256 of its key and value, and one that does "
                                              "not verify (planted by whoever can write under the prefix) is a miss")
    all_routes: bool = Field(False, description="cache every route with the default RouteCache settings")
    routes: dict[str, RouteCache] = Field(default_factory=dict, description="per-route settings")
    semantic: SemanticConfig = Field(default_factory=SemanticConfig)

    @model_validator(mode="after")
    def _entry_fits(self) -> CacheConfig:
        if self.max_entry_bytes > self.max_bytes:
            raise ValueError(f"max_entry_bytes ({self.max_entry_bytes}) must not exceed max_bytes ({self.max_bytes})")
        return self

    def for_route(self, route: str) -> RouteCache | None:
        rc = self.routes.get(route)
        if rc is None and self.all_routes:
            return _DEFAULT_ROUTE
        return rc


_DEFAULT_ROUTE = RouteCache()
