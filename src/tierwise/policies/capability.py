"""`policy: capability` (or the shorthand `{capability: name}`): the route's requests are tasks
for the workers serving that capability. The target lives in tierwise.dispatch.route_target."""

from __future__ import annotations

from typing import Any

from tierwise.dispatch.route_target import CapabilityRouteConfig, CapabilityTarget
from tierwise.errors import ConfigError
from tierwise.policies.base import Target
from tierwise.policies.registry import Builder, PolicyType, register


def _build(cfg: CapabilityRouteConfig, name: str, b: Builder) -> Target:
    if getattr(b.services.cfg, "dispatch", None) is None:
        raise ConfigError(f"route {name!r} dispatches capability {cfg.capability!r}, but the config has no "
                          "`dispatch:` section saying where Redis is (docs/distributed.md)")
    return CapabilityTarget(name, cfg, b.services)


def _references(cfg: Any) -> list[str]:
    return []


register(PolicyType("capability", CapabilityRouteConfig, _build, _references))
