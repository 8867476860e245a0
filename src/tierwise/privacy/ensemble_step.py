"""The built-in `redact` agent of ensembles: replace sensitive values before any model sees them.

```yaml
agents:
  - name: redact
    redact: {classes: [pii, secrets]}     # or {entities: [EMAIL_ADDRESS, PHONE_NUMBER]}, or `redact: true`
  - name: summary
    model: local
    depends_on: [redact]
    input_key: text
```

Output: `{"text": <redacted text>, "redacted": {ENTITY: count}}`. Values become consistent
placeholders (`<EMAIL_ADDRESS_1>`, the same value always the same placeholder within the run)
and are never restored: the ensemble's later agents, its artifacts and its answer only ever
see the placeholders. Detection is tierwise's own (tierwise.privacy.detect): the gateway's
`privacy:` classes when configured, else the `pii` and `secrets` presets; NER only when the
`privacy-ner` extra is installed. A detector failure fails the agent (fail closed). Input that
is not text (JSON from an earlier agent) is redacted as its JSON text.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator


class RedactStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    classes: list[str] | None = Field(None, description="data classes to redact (default: pii and secrets)")
    entities: list[str] | None = Field(None, description="or entity names (EMAIL_ADDRESS, PHONE_NUMBER, ...)")

    @model_validator(mode="after")
    def _one(self) -> RedactStep:
        if self.classes is not None and self.entities is not None:
            raise ValueError("give `classes` or `entities`, not both")
        return self


class RedactFailed(Exception):
    pass


def _detector(gateway: Any) -> tuple[Any, dict[str, frozenset[str]]]:
    """(text -> findings, class -> entities), built once per gateway."""
    cached = getattr(gateway, "_ensemble_redactor", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    from tierwise.privacy.detect import Detector
    from tierwise.privacy.detect_config import DetectionConfig

    cfg = getattr(getattr(gateway, "cfg", None), "privacy", None)
    boundary = getattr(gateway, "privacy", None)
    if cfg is not None and boundary is not None:
        out = (boundary.scan, cfg.class_entities())  # the gateway's own detector
    else:
        cfg = cfg or DetectionConfig.model_validate({"classes": {"pii": {}, "secrets": {}}})
        out = (Detector(cfg).scan, cfg.class_entities())
    try:
        gateway._ensemble_redactor = out
    except AttributeError:
        pass
    return out


def _wanted(step: RedactStep, classes: dict[str, frozenset[str]]) -> frozenset[str]:
    if step.entities is not None:
        return frozenset(step.entities)
    names = step.classes if step.classes is not None else [c for c in ("pii", "secrets") if c in classes]
    unknown = [c for c in names if c not in classes]
    if unknown:
        raise RedactFailed(f"unknown data class {unknown} (declared: {', '.join(sorted(classes))})")
    out: set[str] = set()
    for c in names:
        out |= classes[c]
    return frozenset(out)


def redact_value(step: RedactStep, value: Any, gateway: Any) -> dict[str, Any]:
    from tierwise.privacy.redact import Pseudonymizer

    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    scan, classes = _detector(gateway)
    wanted = _wanted(step, classes)
    try:
        findings = [f for f in scan(text) if f.entity in wanted]
    except Exception as e:  # DetectorError or any other failure: the step fails, nothing passes on
        raise RedactFailed(f"the privacy detector failed ({type(e).__name__}); nothing was passed on") from None
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.entity] = counts.get(f.entity, 0) + 1
    return {"text": Pseudonymizer().redact(text, findings), "redacted": counts}


async def run_redact(step: RedactStep, value: Any, gateway: Any) -> dict[str, Any]:
    """The agent's output; detection runs in a worker thread (it is CPU work)."""
    return await asyncio.to_thread(redact_value, step, value, gateway)
