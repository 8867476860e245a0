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
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # `tierwise --help` imports every module of commands/: no pydantic for it
    from tierwise.config import Config


def _host(base_url: str) -> str:
    """The host `base_url` connects to, as a name compares: lower case, no trailing dot, no brackets."""
    try:
        return (urlsplit(base_url.strip()).hostname or "").rstrip(".")
    except ValueError:
        return ""


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`host` as an IP address, in every form the resolver takes it in (`::ffff:8.8.8.8`, `0x08080808`,
    `134744072`: the system's resolver reads these as IPv4 addresses), else None (a name)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[0-9a-fx.]+", host) or not host[:1].isdigit():
            return None
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _on_this_machine(host: str) -> bool:
    ip = _address(host)
    return host == "localhost" if ip is None else (ip.is_loopback or ip.is_unspecified)


def unmarked_local_providers(cfg: Config) -> list[str]:
    """Providers on this machine left without `locality:`: the default, remote, makes privacy keep data from
    them (local_only data finds no target) and prices and counts their calls as frontier ones. Only an address
    (or `localhost`) says so: `127.0.0.1.example.com` is a name anyone's DNS may point anywhere."""
    out = []
    for name, p in cfg.providers.items():
        host = _host(p.base_url)
        if "locality" not in p.model_fields_set and _on_this_machine(host):
            out.append(f"provider {name} is on this machine ({host}) but has no `locality:`, so it counts as "
                       "remote (the default): privacy rules redact or keep data from it, and its calls are priced "
                       "and reported as remote ones. Fix: `locality: local`")
    return out


def _hosted_api(base_url: str) -> str | None:
    """The hosted provider whose API `base_url` is (genai-prices' address patterns), else None. The patterns
    are matched against the URL without its user part (`https://key@api.openai.com` hid it) and with the host
    written as it compares (`API.OPENAI.COM.`)."""
    try:
        from genai_prices.data import providers
    except ImportError:  # pragma: no cover - it is a dependency
        return None
    try:
        parts = urlsplit(base_url.strip())
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return None
    host = _host(base_url)
    url = f"{parts.scheme.lower()}://{f'[{host}]' if ':' in host else host}{port}{parts.path}"
    for p in providers:
        pattern = getattr(p, "api_pattern", None)
        if pattern and re.match(pattern, url, re.I):
            return str(getattr(p, "name", None) or p.id)
    return None


def _public_address(host: str) -> bool:
    ip = _address(host)
    return ip is not None and ip.is_global


def resolved_public(host: str) -> str | None:
    """`doctor`'s look-up: the first address a name resolves to when every one of them is public (a hosted API
    behind a name of one's own: `llm.example.com` -> a CDN), else None (a LAN or cluster name, or no answer)."""
    if not host or _address(host) is not None:
        return None
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    found = [a for a in (_address(str(i[4][0]).split("%")[0]) for i in infos) if a is not None]
    return str(found[0]) if found and all(a.is_global for a in found) else None


def remote_marked_local(cfg: Config, resolve: Callable[[str], str | None] | None = None) -> list[str]:
    """Providers written `locality: local` whose base_url is a hosted API or a public IP address, or (with
    `resolve`, doctor's DNS look-up) a name that resolves to public addresses only."""
    out = []
    for name, p in cfg.providers.items():
        if p.locality != "local":
            continue
        host = _host(p.base_url)
        hosted = _hosted_api(p.base_url)
        if hosted is not None:
            what = f"{hosted}'s hosted API ({host})"
        elif _public_address(host):
            what = f"a public address ({host})"
        elif resolve is not None and (ip := resolve(host)) is not None:
            what = f"{host}, which resolves to a public address ({ip}) only"
        else:
            continue
        guarded = "the `privacy:` rules let protected data reach it as written (they guard remote providers only)" \
            if cfg.privacy is not None else "a `privacy:` section would not guard it (it guards remote providers only)"
        fix = "`locality: remote`" if hosted is not None else \
            "`locality: remote`, unless the server there is yours and trusted as this machine is"
        out.append(f"provider {name} is `locality: local`, but its base_url is {what}, "
                   f"{'not a server of yours' if hosted is not None else 'reached over the internet'}: {guarded}, "
                   f"and its calls are priced and reported as local ones. Fix: {fix}")
    return out


def local_only_without_local(cfg: Config) -> list[str]:
    """Routes whose every model is remote while a data class is `local_only` for them: each request
    holding that class is refused there (a 400), whatever the client retries, because nothing may take it. An Aider
    team with `pii: local_only` and `architect: frontier` had every planning turn that named a person refused; the
    config gave no hint of it before a request failed (newuser36)."""
    from tierwise.route_map import models_of

    privacy = cfg.privacy
    if privacy is None or not hasattr(privacy, "policy"):
        return []
    out = []
    for rname in cfg.routes:
        models = [m for m in models_of(cfg, rname) if m in cfg.models and cfg.models[m].provider in cfg.providers]
        if not models or any(cfg.providers[cfg.models[m].provider].locality == "local" for m in models):
            continue
        rules = {**privacy.policy, **privacy.routes.get(rname, {})}
        kept = sorted(c for c, pol in rules.items() if pol.action == "local_only")
        if kept:
            out.append(f"route {rname} reaches no local model, and {', '.join(repr(c) for c in kept)} "
                       f"{'is' if len(kept) == 1 else 'are'} local_only there: every request to it holding such "
                       f"data is refused (400). Give it a local target after the remote one (`policy: fallback`, "
                       f"`targets: [{models[0]}, <a local model>]`) or set `privacy.routes.{rname}.{kept[0]}: redact`")
    return out
