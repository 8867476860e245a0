"""Who may reach the gateway from a browser: Host, Origin, Sec-Fetch-Site, CORS and content types.

A gateway on loopback holds the operator's frontier keys, and with no client keys configured
(the default) anything that can send it a request can spend them. A web page can: a cross-site
`fetch` with `Content-Type: text/plain` needs no CORS preflight, and DNS rebinding turns the
page's own host name into 127.0.0.1. So, before any route runs:

- `Host` must be present on HTTP/1.1 and not empty (400: RFC 9112 §3.2; an absolute-form target's authority is its
  Host: server/request_target.py), and an IP literal (rebinding needs a DNS name the attacker controls), `localhost`,
  `server.host`, this machine's host name, or match `server.browser.allowed_hosts`;
- a request a browser marks as coming from another site (`Origin` that is not this host, or
  `Sec-Fetch-Site: cross-site|same-site`) is refused unless its origin is in `allowed_origins`;
- CORS preflights (`OPTIONS` + `Access-Control-Request-Method`) are answered for allowed origins
  only, and their real requests get `Access-Control-Allow-Origin`;
- bodies of JSON routes must be declared JSON (`application/json` or `*+json`), so no form or
  `text/plain` post gets in without a preflight (415; `allow_non_json` turns this off).

Cost for a request without browser headers: `passes`, three lookups in the request's header
dict against the Host and Content-Type values already seen to pass, and the dict's size against the
header lines' (a name on two lines, which `screen` refuses for Host, Origin, Authorization and
x-api-key, is never let through by values seen before; session 34); the full `screen` runs for
anything else (bench figure in bench/RESULTS.md, "origin guard").
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from fnmatch import fnmatchcase
from typing import Any

from tierwise.config import ServerConfig
from tierwise.errors import InvalidRequest, PermissionDenied, TierwiseError
from tierwise.server.asgi_scope import request_headers

Send = Callable[[dict[str, Any]], Awaitable[None]]
ErrorSender = Callable[[dict[str, Any], Send, TierwiseError, list[tuple[bytes, bytes]]], Awaitable[None]]

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
_EXPOSED = b"x-tierwise-request-id, x-tierwise-route, x-tierwise-steps, retry-after, x-should-retry"
# RFC 3986 uri-host [":" port]: an IP literal in brackets, or a reg-name (unreserved, sub-delims, percent escapes)
_HOST = re.compile(r"[ \t]*(?:\[[0-9a-f:.]+(?:%25[\w.~-]+)?\]|[a-z0-9._~!$&'()*+,;=%-]+)(?::\d{0,5})?[ \t]*\Z", re.IGNORECASE)
_SEEN_MAX = 64  # Host / Content-Type values remembered as passing (bounded: a client picks them)


class UnsupportedMediaType(InvalidRequest):
    status = 415


def _host_name(raw: str) -> str:
    """`Host` without its port, lower-cased, without a trailing dot; IPv6 literals keep no brackets."""
    h = raw.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else h
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def valid_host(value: str) -> bool:
    """Whether a `Host` value is a host or host:port (RFC 9112 §3.2: else 400). Also for `mcp_http`."""
    return _HOST.match(value) is not None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_json(ctype: str) -> bool:
    media = ctype.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _short(v: str) -> str:
    return v if len(v) <= 80 else v[:80] + "..."


class OriginGuard:
    def __init__(self, server: ServerConfig, send_error: ErrorSender) -> None:
        b = server.browser
        self.send_error = send_error
        self.any_host = "*" in b.allowed_hosts
        # This machine's own name is safe too (an attacker's rebinding needs a name it controls).
        self.hosts = {_host_name(h) for h in (*_LOOPBACK_NAMES, server.host, socket.gethostname())}
        self.host_patterns = [h.lower() for h in b.allowed_hosts if any(c in h for c in "*?[")]
        self.hosts.update(h.lower().rstrip(".") for h in b.allowed_hosts)
        self.any_origin = "*" in b.allowed_origins
        self.origins = {o.lower().rstrip("/") for o in b.allowed_origins}
        self.check_json = not b.allow_non_json
        # Raw header values `screen` found acceptable: a request that carries one of each and no
        # browser header needs nothing more (see `passes`).
        self._hosts_seen: set[str] = set()
        self._json_seen: set[str] = set()

    def passes(self, scope: dict[str, Any]) -> bool:
        """True when `screen` would let this request through unchanged, known from values seen
        before: no Origin / Sec-Fetch-Site, a Host and (for a POST) a Content-Type that passed, and no
        name on two lines (the dict keeps a repeated name's last line: `screen` looks at them all)."""
        headers = request_headers(scope)
        if len(headers) != len(scope["headers"]) or "origin" in headers or "sec-fetch-site" in headers:
            return False
        method = scope["method"]
        if headers.get("host") not in self._hosts_seen:  # (no Host: `screen` answers an HTTP/1.1 request 400)
            return False
        return method != "POST" or not self.check_json or headers.get("content-type") in self._json_seen

    @staticmethod
    def _remember(seen: set[str], value: str) -> None:
        if len(seen) >= _SEEN_MAX:
            seen.clear()
        seen.add(value)

    def host_ok(self, host: str) -> bool:
        name = _host_name(host)
        if name in self.hosts or self.any_host or _is_ip(name):
            return True
        return any(fnmatchcase(name, p) for p in self.host_patterns)

    def origin_ok(self, origin: str, host: str | None) -> bool:
        o = origin.lower().rstrip("/")
        if self.any_origin or o in self.origins:
            return True
        # Same origin (a page the gateway itself served; the Host check already ran).
        return host is not None and o.partition("://")[2] == host.lower()

    async def screen(self, scope: dict[str, Any], send: Send, allow: str | None) -> Send | None:
        """The `send` the request goes on with (wrapped with CORS headers for an allowed origin),
        or None when this answered the request itself (a refusal or a CORS preflight).
        `allow`: the methods the path serves (None: no such path)."""
        host = origin = site = ctype = acrm = twice = auth = xkey = None
        for k, v in scope["headers"]:
            if k == b"host":
                twice = twice or host is not None
                host = v.decode("latin-1")
            elif k == b"origin":
                twice = twice or origin is not None
                origin = v.decode("latin-1")
            elif k == b"authorization":  # (review33c: singletons too; the key's reader takes the last line)
                twice, auth = twice or auth, True
            elif k == b"x-api-key":
                twice, xkey = twice or xkey, True
            elif k == b"sec-fetch-site":
                site = v
            elif k == b"content-type":
                ctype = v.decode("latin-1")
            elif k == b"access-control-request-method":
                acrm = v
        if twice:  # RFC 9112 3.2: 400. This reads the last line; a proxy in front may have read the first (wire10)
            await self.send_error(scope, send, InvalidRequest(
                "the request has more than one Host, Origin, Authorization or x-api-key header line"), [])
            return None
        if (host is None and scope["http_version"] != "1.0") or (host is not None and not valid_host(host)):
            # RFC 9112 3.2: 400 for none on HTTP/1.1 (HTTP/1.0 has none to send) and for a value that is no host[:port]
            # (wire11: both served; `127.0.0.1:80@evil.com` and `[::1]evil.com` were loopback's here, a URL parser in
            # a proxy in front reads evil.com)
            await self.send_error(scope, send, InvalidRequest("an HTTP/1.1 request must carry one Host header naming "
                                                              "the host it is for (host or host:port)"), [])
            return None
        if host is not None:
            if not self.host_ok(host):
                await self.send_error(scope, send, PermissionDenied(
                    f"this gateway does not answer for host {_short(host)!r}: add it to server.browser.allowed_hosts"),
                    [])
                return None
            self._remember(self._hosts_seen, host)
        allowed_origin = False
        if origin is not None or site in (b"cross-site", b"same-site"):
            allowed_origin = origin is not None and self.origin_ok(origin, host)
            if not allowed_origin:
                what = f"origin {_short(origin)!r}" if origin is not None else "another site"
                await self.send_error(scope, send, PermissionDenied(
                    f"requests from {what} are refused: add the origin to server.browser.allowed_origins"), [])
                return None
            if scope["method"] == "OPTIONS" and acrm is not None and allow is not None:
                await self._preflight(scope, send, origin or "", allow)
                return None
        if allowed_origin:  # the page may read every answer, refusals included
            send = _with_cors(send, (origin or "").encode("latin-1"))
        if self.check_json and scope["method"] == "POST" and allow is not None and "POST" in allow and not (
                ctype is not None and _is_json(ctype)):
            await self.send_error(scope, send, UnsupportedMediaType(
                "the request body must be sent with Content-Type: application/json"), [])
            return None
        if ctype is not None and _is_json(ctype):
            self._remember(self._json_seen, ctype)
        return send

    async def _preflight(self, scope: dict[str, Any], send: Send, origin: str, allow: str) -> None:
        asked = b""
        for k, v in scope["headers"]:
            if k == b"access-control-request-headers":
                asked = v
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", allow.encode()),
            (b"access-control-max-age", b"600"),
            (b"vary", b"origin"),
            (b"content-length", b"0"),
        ]
        if asked:
            headers.append((b"access-control-allow-headers", asked))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, origin: bytes) -> Send:
    async def cors_send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            msg = {**msg, "headers": [*msg.get("headers", []), (b"access-control-allow-origin", origin),
                                      (b"access-control-expose-headers", _EXPOSED), (b"vary", b"origin")]}
        await send(msg)

    return cors_send
