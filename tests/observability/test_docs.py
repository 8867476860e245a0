"""docs/observability.md covers every observability config key, every metric and every error type."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from tierwise.observability.settings import ObservabilityConfig
from tierwise.observability.vocab import DECISION_REASONS, ERROR_VOCABULARY

DOC = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text(encoding="utf-8")


def keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, f in model.model_fields.items():
        t = f.annotation
        if isinstance(t, type) and issubclass(t, BaseModel):
            out += keys(t, f"{name}.")
        else:
            out.append(prefix + name)
    return out


def test_every_config_key_is_documented():
    missing = [k for k in keys(ObservabilityConfig) if f"`{k}`" not in DOC]
    assert not missing, f"docs/observability.md: undocumented keys {missing}"


def test_every_metric_is_documented(two_tier):
    g = two_tier(observability={"metrics": {"enabled": True}})
    names = {fam.name for fam in g.gateway.observer.metrics.registry.collect()}
    missing = [n for n in names if f"`{n}" not in DOC]
    assert names and not missing, f"docs/observability.md: undocumented metrics {missing}"


def test_every_error_type_and_reason_is_documented():
    missing = [w for w in ERROR_VOCABULARY | DECISION_REASONS if f"`{w}`" not in DOC]
    assert not missing, missing
