"""Gateway client keys and what each may name.

`server.api_keys_env` lists environment variables holding client keys; an entry may be
`{env, routes, direct_models}` to limit a key to some routes (a team's key reaches only its
routes) and to stop it naming a model directly, which would bypass the routing (budgets,
cascades, the cheap tier) the operator set up. A key is compared with every configured key in
constant time, as a digest (`key_digest`), so timing tells nothing about which key nearly matched, nor how
long each key is.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Container
from dataclasses import dataclass

from tierwise.config import ClientKey, ServerConfig
from tierwise.errors import AuthenticationError, PermissionDenied


def client_credential(headers: dict[str, str]) -> str | None:
    """The key a request authenticates with: `x-api-key` when present, else an `Authorization: Bearer` token.
    Everything keyed by the client (privacy mappings included) reads it here, in the order authentication does."""
    given = headers.get("x-api-key")
    if given is None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
    return given


def key_digest(value: str | bytes) -> bytes:
    """What keys are compared as. `hmac.compare_digest` is constant-time only between values of one length: it
    returned at once for a key of another length, so timing told the length of each configured key."""
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


@dataclass(frozen=True)
class KeyScope:
    routes: frozenset[str] | None  # None: every route
    direct_models: bool
    name: str = ""  # per-key budgets and rate limits count under this name
    tenant: str = ""  # whose cached answers this key may get (docs/cache.md)

    def admit(self, requested: str, route: str, deployments: Container[str]) -> None:
        """Raise 403 unless this key may use `route` (what the gateway resolved `requested` to)."""
        if self.routes is not None and route not in self.routes:
            raise PermissionDenied(f"this API key may not use {requested[:200]!r}")
        if not self.direct_models and requested == route and route in deployments and (
                self.routes is None or route not in self.routes):
            raise PermissionDenied(f"this API key may not name the model {requested[:200]!r} directly; name a route")

    def visible(self, name: str, deployments: Container[str]) -> bool:
        if self.routes is not None:
            return name in self.routes
        return self.direct_models or name not in deployments


class KeyRing:
    def __init__(self, server: ServerConfig) -> None:
        self.required = bool(server.api_keys_env)
        self.open_scope = KeyScope(None, server.direct_models)
        self.keys: list[tuple[bytes, KeyScope]] = []
        for entry in server.api_keys_env:
            k = entry if isinstance(entry, ClientKey) else ClientKey(env=entry)
            value = os.environ.get(k.env)
            if not value:
                continue
            direct = server.direct_models if k.direct_models is None else k.direct_models
            self.keys.append((key_digest(value), KeyScope(frozenset(k.routes) if k.routes is not None else None, direct,
                                                       k.name or k.env, k.tenant or f"key:{k.env}")))

    def given(self, headers: dict[str, str]) -> str | None:
        return client_credential(headers)

    def check(self, headers: dict[str, str]) -> KeyScope:
        """The scope of the key the request carries; 401 when keys are required and it has none that fits."""
        if not self.required:
            return self.open_scope
        found = self.find(headers)
        if found is None:
            raise AuthenticationError("invalid or missing API key for this gateway")
        return found

    def find(self, headers: dict[str, str]) -> KeyScope | None:
        given = self.given(headers)
        if not given:
            return None
        g = key_digest(given)
        found: KeyScope | None = None
        for k, scope in self.keys:  # compare with every key so timing tells nothing
            if hmac.compare_digest(g, k) and found is None:
                found = scope
        return found
