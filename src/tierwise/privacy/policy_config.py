"""The `privacy` config section's policy part: what each data class may do at the boundary.

```yaml
privacy:
  classes: {pii: {}, secrets: {}}      # detection (tierwise.privacy.detect_config)
  policy:                              # every route: data class -> action
    pii: redact
    secrets: block
  routes:                              # per route, overriding `policy` class by class
    hr-assistant: {pii: local_only}
    eu-chat: {pii: {action: allow, regions: [eu]}}
  mapping: {header: x-tierwise-conversation, ttl_s: 3600, key_env: TIERWISE_PRIVACY_KEY}
  audit: {store_payload: false}
```

Actions, applied to a call that is about to leave for a `locality: remote` provider:
`allow` (sent as is), `redact` (reversible placeholders, answers restored), `local_only`
(the remote call is refused; local targets still serve), `block` (the request fails with a
4xx naming the class). `regions` narrows where the class may go at all: a remote provider
that has none of those region tags is refused as for `local_only`. Local providers always
get the request unchanged: nothing leaves the machine. The whole section is optional; without
it the boundary does not exist and costs nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tierwise.privacy.detect_config import DetectionConfig
from tierwise.privacy.llm_detector import LlmDetectorConfig

Action = Literal["allow", "redact", "local_only", "block"]
# When classes of one request disagree, the strictest wins.
STRICTNESS: dict[str, int] = {"allow": 0, "redact": 1, "local_only": 2, "block": 3}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassPolicy(_Strict):
    action: Action = Field("redact", description="allow | redact | local_only | block")
    regions: list[str] | None = Field(
        None, description="region tags (provider `regions`/`region`) this class may be sent to; a remote "
        "provider without any of them is refused as for local_only; none = any region")
    surrogates: list[str] = Field(
        default_factory=list, description="entity names redacted with format-keeping fake values (a fake IBAN "
        "that validates) instead of <ENTITY_N> placeholders, where the remote model needs the shape")

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("give at least one region, or leave `regions` out")
        return [r.strip().lower() for r in v] if v is not None else None


def _coerce(v: object) -> object:
    """`pii: redact` is short for `pii: {action: redact}`."""
    return {"action": v} if isinstance(v, str) else v


class MappingConfig(_Strict):
    """Conversations that span requests keep one mapping (placeholders stay stable across turns)."""

    header: str = Field("x-tierwise-conversation", description="request header naming the conversation "
                        "(its value is combined with the client's key, then hashed: never stored)")
    metadata_key: str | None = Field("conversation_id", description="or a `metadata` string field naming it")
    ttl_s: float = Field(3600.0, gt=0, le=30 * 86400, description="seconds a mapping lives after its last use")
    max_entries: int = Field(10_000, ge=1, le=10_000_000, description="conversations kept at most (LRU)")
    key_env: str | None = Field(None, description="environment variable with a 64-hex-digit AES-256 key; "
                                "without it a random key per process (mappings end with the process)")
    path: str | None = Field(None, description="SQLite file for the sealed mappings (relative to the config); "
                             "none = memory")

    @field_validator("header")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()


class AuditConfig(_Strict):
    store_payload: bool = Field(False, description="keep each outgoing remote payload (redacted) in the "
                                "ledger, so `tierwise audit --prove` can re-hash and re-scan it")
    max_payload_bytes: int = Field(256 * 1024, ge=1024, description="larger payloads keep only their hash")


class PrivacyConfig(DetectionConfig):
    policy: dict[str, ClassPolicy] = Field(
        default_factory=dict, description="data class -> action (or {action, regions, surrogates}) for every "
        "route; a class without an entry is `redact`")
    routes: dict[str, dict[str, ClassPolicy]] = Field(
        default_factory=dict, description="route name -> {data class -> policy}, overriding `policy`")
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    llm_detector: LlmDetectorConfig = Field(default_factory=LlmDetectorConfig)

    @field_validator("policy", mode="before")
    @classmethod
    def _short(cls, v: object) -> object:
        return {k: _coerce(x) for k, x in v.items()} if isinstance(v, dict) else v

    @field_validator("routes", mode="before")
    @classmethod
    def _short_routes(cls, v: object) -> object:
        if not isinstance(v, dict):
            return v
        return {r: ({k: _coerce(x) for k, x in p.items()} if isinstance(p, dict) else p) for r, p in v.items()}

    @model_validator(mode="after")
    def _known_classes(self) -> PrivacyConfig:
        known = set(self.classes)
        for where, table in [("policy", self.policy)] + [(f"routes.{r}", t) for r, t in self.routes.items()]:
            for cls in table:
                if cls not in known:
                    raise ValueError(f"{where}.{cls}: unknown data class (declared: {', '.join(sorted(known))})")
        return self
