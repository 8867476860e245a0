"""Who reads the gateway's views of many clients' requests: the dashboard, /metrics and the budget status.

Roles (docs/observability.md, "Access"):

- **open**: the gateway has no client keys; everything is as open as the chat endpoints.
- **admin**: a key of `server.admin_keys_env`; reads everything, the conversation included.
- **viewer**: a key of `observability.dashboard.viewer_keys_env`; reads everything but the conversation,
  changes nothing (the chat, feedback, cache and approval endpoints refuse it).
- **client**: a gateway key (`server.api_keys_env`), scoped or not; reads only the requests, traces and
  budget buckets of its own key name, or nothing of the dashboard with
  `observability.dashboard.client_keys: none`. Gateway-wide aggregates (the charts' totals, the topology,
  /metrics) are an admin's or a viewer's.

Every configured key is compared in constant time, so timing tells nothing about which role nearly matched.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Any, Literal

from tierwise.errors import AuthenticationError, PermissionDenied
from tierwise.server.key_scopes import KeyScope, key_digest

Role = Literal["open", "admin", "viewer", "client"]


@dataclass(frozen=True)
class Reader:
    role: Role
    key: KeyScope | None = None  # the client key's scope (role "client")

    @property
    def sees_all(self) -> bool:
        return self.role != "client"

    @property
    def sees_content(self) -> bool:
        """May read the conversation (prompts, answers) of the requests it may see."""
        return self.role != "viewer"

    def owns(self, key_name: str | None) -> bool:
        """Whether a request made with the key named `key_name` is this reader's to see."""
        return self.sees_all or (self.key is not None and bool(key_name) and key_name == self.key.name)

    def need_all(self, what: str) -> None:
        if not self.sees_all:
            raise PermissionDenied(f"{what} covers every client's requests: it needs an admin key "
                                   "(server.admin_keys_env) or a viewer key (observability.dashboard.viewer_keys_env)")


def _match(given: bytes, keys: list[bytes]) -> bool:
    ok = False
    for k in keys:  # every key compared: timing tells nothing
        ok = hmac.compare_digest(given, k) or ok
    return ok


class Roles:
    def __init__(self, app: Any) -> None:
        cfg = app.gw.cfg
        self.keyring = app.keyring
        self.admin_keys = [key_digest(v) for v in (os.environ.get(e) for e in cfg.server.admin_keys_env) if v]
        dash = cfg.observability.dashboard
        self.viewer_keys = [key_digest(v) for v in (os.environ.get(e) for e in dash.viewer_keys_env) if v]
        self.clients_read = dash.client_keys == "own"

    def reader(self, headers: dict[str, str], *, dashboard: bool = True) -> Reader:
        """The caller's role; 401 without a key this gateway knows, 403 for a client key on the dashboard
        (`dashboard`) when `observability.dashboard.client_keys` is `none`."""
        if not self.keyring.required:
            return Reader("open")
        given = self.keyring.given(headers)
        g = key_digest(given) if given else b""
        admin = _match(g, self.admin_keys) if g else False
        viewer = _match(g, self.viewer_keys) if g else False
        client = self.keyring.find(headers)
        if admin:
            return Reader("admin")
        if viewer:
            return Reader("viewer")
        if client is not None:
            if dashboard and not self.clients_read:
                raise PermissionDenied("gateway keys may not read the dashboard here "
                                       "(observability.dashboard.client_keys: none); use an admin or a viewer key")
            return Reader("client", client)
        raise AuthenticationError("invalid or missing API key (a gateway, admin or viewer key)")
