"""The `approvals:` section of tierwise.yaml: which routes (and dispatch capabilities) wait for a
human's approval, for how long, how many may wait at once, and where the pending requests live.

```yaml
server:
  admin_keys_env: [TIERWISE_ADMIN_KEY]   # who may approve (not any gateway key)
approvals:
  store: {backend: redis}                # memory: this process; redis: shared by every replica
  routes:
    wire-transfer: {timeout: 10m, max_pending: 20}   # max_pending_per_key: 10 (half) by default
  capabilities:
    synthesise: {timeout: 1h}
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from tierwise.budgets.config import parse_duration
from tierwise.redis_url import RedisUrl


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalGate(_Strict):
    timeout: float | str = Field("15m", description="how long a request waits for a decision before it is "
                                 "rejected (seconds, or 90s / 15m / 2h)")
    max_pending: int = Field(20, ge=1, le=10_000, description="requests of this route that may wait at once; "
                             "beyond it new ones are refused at once (429)")
    max_pending_per_key: int | None = Field(None, ge=1, le=10_000, description="requests of this route one "
                                            "gateway key may have waiting at once (a share of max_pending, so "
                                            "one key cannot keep every other key out); default: half of "
                                            "max_pending, at least 1; not counted on a gateway without keys")
    preview_chars: int = Field(400, ge=0, le=8000, description="characters of the request's text an approver "
                               "sees (after the privacy guard's redaction and the secret scrubber)")

    @field_validator("timeout")
    @classmethod
    def _duration(cls, v: float | str) -> float:
        s = parse_duration(v)
        if not 0 < s <= 7 * 86400:
            raise ValueError("must be more than 0 seconds and at most 7d")
        return s

    @model_validator(mode="after")
    def _share(self) -> ApprovalGate:
        if self.max_pending_per_key is not None and self.max_pending_per_key > self.max_pending:
            raise ValueError(f"max_pending_per_key ({self.max_pending_per_key}) must be at most max_pending "
                             f"({self.max_pending})")
        return self

    @property
    def seconds(self) -> float:
        return float(self.timeout)

    @property
    def per_key(self) -> int:
        """Requests one key may have waiting at once."""
        if self.max_pending_per_key is not None:
            return self.max_pending_per_key
        return max(1, self.max_pending // 2)


class ApprovalStore(_Strict):
    backend: Literal["memory", "redis"] = Field("memory", description="memory: this gateway only; redis: "
                                                "pending requests shared by every replica on the same Redis")
    redis_url: RedisUrl | None = Field(None, description="Redis server; default: budgets.store.redis_url, else "
                                  "redis://127.0.0.1:6379/0")
    key_prefix: str = Field("tierwise:approvals:", min_length=1, max_length=128, pattern=r"^\S+$",
                            description="prefix of every Redis key and channel the approvals use")
    signing_key_env: str | None = Field(None, min_length=1, description="environment variable holding a secret "
                                        "(16+ characters, the same on every gateway of the prefix): each decision "
                                        "carries an HMAC-SHA256 tag, and an `approved` record whose tag does not "
                                        "verify (written by whoever can write the prefix's keys) rejects its request")
    signing_accept_key_envs: list[str] = Field(default_factory=list, max_length=4, description="environment "
                                               "variables holding further secrets whose tags are accepted, never "
                                               "used to sign: a key rotation's other key (docs/distributed.md)")
    signing_accept_until: AwareDatetime | None = Field(None, description="when the secrets of "
                                                         "signing_accept_key_envs stop verifying (ISO 8601 with its "
                                                         "zone, 2026-12-14T00:00:00Z): the rotation's end; required "
                                                         "with them, so a retired secret cannot stay valid for ever")
    recheck: float = Field(15.0, gt=0, le=600, description="seconds between two looks at a pending record by "
                           "its waiter, in case a decision's notice was lost (a Redis reconnect)")


    @model_validator(mode="after")
    def _accepting_needs_signing(self) -> ApprovalStore:
        if self.signing_accept_key_envs and not self.signing_key_env:
            raise ValueError("signing_accept_key_envs needs signing_key_env (the key this gateway signs with)")
        if self.signing_accept_key_envs and self.signing_accept_until is None:
            # (session 34's rotation had no end: a leaked old secret forged decisions until someone removed it)
            raise ValueError("signing_accept_key_envs needs signing_accept_until (when the rotation ends and those "
                             "secrets stop verifying, such as 2026-12-14T00:00:00Z)")
        if self.signing_accept_until is not None and not self.signing_accept_key_envs:
            raise ValueError("signing_accept_until without signing_accept_key_envs (it ends accepting those)")
        return self


class ApprovalsConfig(_Strict):
    store: ApprovalStore = Field(default_factory=ApprovalStore)
    routes: dict[str, ApprovalGate] = Field(default_factory=dict, description="routes whose requests wait "
                                            "for an approval")
    capabilities: dict[str, ApprovalGate] = Field(default_factory=dict, description="dispatch capabilities "
                                                  "whose tasks wait for an approval")


def references(cfg: ApprovalsConfig | None, routes: set[str], models: set[str]) -> list[tuple[str, str]]:
    """(key path, problem) for every name the section gives that is not a route."""
    if cfg is None:
        return []
    return [(f"approvals.routes.{r}", f"{r!r} is a model: gate a route (a route whose target is the model)"
             if r in models else f"unknown route {r!r}") for r in cfg.routes if r not in routes]
