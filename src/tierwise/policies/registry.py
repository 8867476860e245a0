"""Route policy types: each policy module registers a pydantic config model and a builder.

`tierwise.yaml` names a policy type per route (`policy: fallback`, `policy: cascade`, ...);
config loading validates the route's keys with the registered model (so errors name the key
path), and the app builds the Target with the registered builder. Registering here keeps
config.py free of knowledge about every policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tierwise.policies.base import Target


class PolicyConfig(BaseModel):
    """Base of every route policy's config; unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")
    policy: str


class Builder:
    """What a policy builder gets: a way to turn a target name into a Target, and app services."""

    def __init__(self, resolve: Callable[[str], Target], services: Any, base_dir: str = ".") -> None:
        self.resolve = resolve
        self.services = services
        self.base_dir = base_dir


@dataclass(frozen=True)
class PolicyType:
    name: str
    config: type[PolicyConfig]
    build: Callable[[Any, str, Builder], Target]  # (config, route name, builder) -> Target
    # Names of other targets (models/routes) the config refers to, for start-up validation.
    references: Callable[[Any], list[str]]


POLICY_TYPES: dict[str, PolicyType] = {}


def register(ptype: PolicyType) -> PolicyType:
    POLICY_TYPES[ptype.name] = ptype
    return ptype


def load_builtin_policies() -> None:
    """Import the policy modules so they register themselves (import order is irrelevant)."""
    import importlib
    import pkgutil

    import tierwise.policies as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("base", "registry"):
            importlib.import_module(f"tierwise.policies.{mod.name}")
