"""Data-class policy: what a request holding given classes may do on its way to one destination.

`PolicyTable.for_route(route)` is the per-class policy of a route (the `privacy.policy`
defaults overlaid with `privacy.routes.<route>`); for a model a client names directly, past the
routes, it is also no looser than the rule of any route that leads to that model (`reached_by`). `decide(policies, present, regions)` turns
the classes found in a request (and the entity types that make them up) into one `Verdict`
for a remote destination with the given region tags:

- any present class whose action is `block` -> `block` (the request fails, 4xx naming it);
- else any present class that is `local_only`, or whose `regions` the destination has none
  of -> `refuse` (this remote call does not happen; local targets may still serve);
- else `send`, with the entities of every present `redact` class replaced on the way out.

Nothing here looks at values: only class names, entity names and counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tierwise.privacy.policy_config import STRICTNESS, ClassPolicy, PrivacyConfig

DEFAULT = ClassPolicy()  # a class without an entry: redact


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Literal["send", "refuse", "block"]
    redact: frozenset[str] = frozenset()  # entity names to replace before sending
    surrogates: frozenset[str] = frozenset()  # of those, the ones given format-keeping fakes
    classes: tuple[str, ...] = ()  # the classes that decided a refuse/block
    reason: str = ""  # names only, never values
    kept: frozenset[str] = field(default_factory=frozenset)  # entities sent as they are (allowed)


class PolicyTable:
    """Per-route class policies, resolved once per route and cached."""

    def __init__(self, cfg: PrivacyConfig, reached_by: Mapping[str, Iterable[str]] | None = None) -> None:
        self.class_entities = cfg.class_entities()
        self._defaults = {c: cfg.policy.get(c, DEFAULT) for c in self.class_entities}
        self._routes = cfg.routes
        # model -> the routes with a `privacy.routes` rule that lead to it. A client naming the model itself
        # (server.direct_models, on by default) got `policy` alone: `pii: local_only` on a route let the same
        # text reach the route's remote model, redacted, when the client named that model instead of the route.
        self._reached_by = {m: tuple(rs) for m, rs in (reached_by or {}).items()}
        self._cache: dict[str, dict[str, ClassPolicy]] = {}
        # entity -> the classes it belongs to (an email is pii and customer data at once)
        self.entity_classes: dict[str, tuple[str, ...]] = {}
        for cls, ents in self.class_entities.items():
            for e in ents:
                self.entity_classes[e] = (*self.entity_classes.get(e, ()), cls)

    def for_route(self, route: str) -> dict[str, ClassPolicy]:
        got = self._cache.get(route)
        if got is None:
            got = {**self._defaults, **self._routes.get(route, {})}
            for r in self._reached_by.get(route, ()):
                got = stricter(got, {**self._defaults, **self._routes[r]})
            self._cache[route] = got
        return got

    def protected_entities(self) -> frozenset[str]:
        """Entities of every class some route does not simply allow everywhere: never stored raw."""
        out: set[str] = set()
        tables = [self._defaults, *({**self._defaults, **t} for t in self._routes.values())]
        for table in tables:
            for cls, pol in table.items():
                if pol.action != "allow" or pol.regions is not None:
                    out |= self.class_entities.get(cls, frozenset())
        return frozenset(out)

    def classes_of(self, entity_counts: Mapping[str, int]) -> dict[str, int]:
        """Class -> number of findings of its entities."""
        out: dict[str, int] = {}
        for ent, n in entity_counts.items():
            for cls in self.entity_classes.get(ent, ()):
                out[cls] = out.get(cls, 0) + n
        return out


def stricter(a: Mapping[str, ClassPolicy], b: Mapping[str, ClassPolicy]) -> dict[str, ClassPolicy]:
    """Class by class, the stricter of two policies (an inner context never loosens the outer)."""
    out = dict(a)
    for cls, pol in b.items():
        mine = out.get(cls)
        if mine is None or STRICTNESS[pol.action] > STRICTNESS[mine.action] or (
                STRICTNESS[pol.action] == STRICTNESS[mine.action] and pol.regions is not None and mine.regions is None):
            out[cls] = pol
    return out


def _kinds(classes: Iterable[str], class_entities: Mapping[str, frozenset[str]], found: frozenset[str]) -> str:
    """` (found: EMAIL_ADDRESS, PHONE_NUMBER)`: the kinds of value behind a refusal, never a value, so the user
    learns what in the request was that class (an Aider chat's file held an e-mail address: newuser36)."""
    kinds = sorted({e for c in classes for e in class_entities.get(c, frozenset()) if e in found})
    return f" (found: {', '.join(kinds)})" if kinds else ""


def decide(policies: Mapping[str, ClassPolicy], present: Iterable[str], class_entities: Mapping[str, frozenset[str]],
           regions: frozenset[str], found_entities: Iterable[str] = ()) -> Verdict:
    """The verdict for sending a request holding classes `present` to a remote destination tagged `regions`."""
    present = sorted(set(present))
    found = frozenset(found_entities)
    blocked = [c for c in present if policies.get(c, DEFAULT).action == "block"]
    if blocked:
        return Verdict("block", classes=tuple(blocked),
                       reason=f"holds data of class {', '.join(repr(c) for c in blocked)}"
                       f"{_kinds(blocked, class_entities, found)}, which is blocked")
    local = [c for c in present if policies.get(c, DEFAULT).action == "local_only"]
    if local:
        return Verdict("refuse", classes=tuple(local),
                       reason=f"data of class {', '.join(repr(c) for c in local)} is local_only"
                       f"{_kinds(local, class_entities, found)}")
    outside = [c for c in present
               if (r := policies.get(c, DEFAULT).regions) is not None and not (regions & frozenset(r))]
    if outside:
        return Verdict("refuse", classes=tuple(outside),
                       reason=f"data of class {', '.join(repr(c) for c in outside)} may only go to regions "
                       f"{sorted({x for c in outside for x in (policies.get(c, DEFAULT).regions or [])})}; "
                       f"this provider has {sorted(regions) or 'no region tag'}")
    redact: set[str] = set()
    surrogates: set[str] = set()
    for c in present:
        pol = policies.get(c, DEFAULT)
        if pol.action == "redact":
            redact |= class_entities.get(c, frozenset())
            surrogates |= set(pol.surrogates)
    redact &= found if found else redact
    return Verdict("send", redact=frozenset(redact), surrogates=frozenset(surrogates & redact),
                   kept=frozenset(found - redact) if found else frozenset())
