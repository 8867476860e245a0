"""Config slips that send data elsewhere than the operator meant (`doctor` and `serve` name them):

- a provider's `locality:` against where its `base_url` is, the word privacy rules, prices and reports trust:
  left out for a server on this machine (the default, remote, makes privacy keep data from it), or `local`
  written for a hosted API (OpenRouter, OpenAI, ...: genai-prices' list of API addresses) or a public IP
  address (privacy rules then let protected data reach it as written, and its spend counts as local).

(A `privacy.routes` rule holds also for a client that names one of the route's models directly: the boundary
applies it, tierwise.privacy.policy, so there is nothing to warn about.)"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # `tierwise --help` imports every module of commands/: no pydantic for it
    from tierwise.config import Config


def unmarked_local_providers(cfg: Config) -> list[str]:
    """Providers on this machine left without `locality:`: the default, remote, makes privacy keep data from
    them (local_only data finds no target) and prices and counts their calls as frontier ones."""
    out = []
    for name, p in cfg.providers.items():
        host = (urlsplit(p.base_url).hostname or "").lower()
        if "locality" not in p.model_fields_set and (host in ("localhost", "::1") or host.startswith("127.")):
            out.append(f"provider {name} is on this machine ({host}) but has no `locality:`, so it counts as "
                       "remote (the default): privacy rules redact or keep data from it, and its calls are priced "
                       "and reported as remote ones. Fix: `locality: local`")
    return out


def _hosted_api(base_url: str) -> str | None:
    """The hosted provider whose API `base_url` is (genai-prices' address patterns), else None."""
    try:
        from genai_prices.data import providers
    except ImportError:  # pragma: no cover - it is a dependency
        return None
    url = base_url.strip().lower()
    for p in providers:
        pattern = getattr(p, "api_pattern", None)
        if pattern and re.match(pattern, url):
            return str(getattr(p, "name", None) or p.id)
    return None


def _public_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        return False


def remote_marked_local(cfg: Config) -> list[str]:
    """Providers written `locality: local` whose base_url is a hosted API or a public IP address."""
    out = []
    for name, p in cfg.providers.items():
        if p.locality != "local":
            continue
        host = (urlsplit(p.base_url).hostname or "").lower()
        hosted = _hosted_api(p.base_url)
        if hosted is None and not _public_address(host):
            continue
        what = f"{hosted}'s hosted API ({host})" if hosted else f"a public address ({host})"
        guarded = "the `privacy:` rules let protected data reach it as written (they guard remote providers only)" \
            if cfg.privacy is not None else "a `privacy:` section would not guard it (it guards remote providers only)"
        out.append(f"provider {name} is `locality: local`, but its base_url is {what}, not a server of yours: "
                   f"{guarded}, and its calls are priced and reported as local ones. Fix: `locality: remote`")
    return out
