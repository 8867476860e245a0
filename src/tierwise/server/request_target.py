"""A request line's target in absolute form (`POST http://host/v1/chat/completions HTTP/1.1`), for
`limits.GuardedHttpToolsProtocol` (the gateway's and `tierwise mcp --transport http`'s server alike).

RFC 9112 §3.2.2: a server must accept the absolute form, and the target's authority, not the `Host` line, names
the host the request is for. uvicorn kept only the target's path: `GET http://evil.example/health` with `Host:
127.0.0.1` was served as loopback's, the DNS-rebinding guards (server/origin_guard.py, the mcp package's) reading
the `Host` line while the request named another host (wire10/review33c "left"). Now the authority is the request's
`Host` (the line is set to it, or added for HTTP/1.0 without one), so each guard checks the host the request names,
and a request whose `Host` line names another host than its target is refused 400: it is ambiguous in the same way
as two `Host` lines (wire10): a proxy in front may route or check by the line, the gateway by the target. So is a
target that is not `http`/`https`, carries a user (RFC 9110 §4.2.4: not sent), or has no path.
A request without `Host` on HTTP/1.1 is the origin guard's (400, RFC 9112 §3.2); the asterisk form (`OPTIONS *`)
is an unknown path (404), the authority form (`CONNECT`) unparseable here (400).
"""

from __future__ import annotations

import httptools


class BadTarget(Exception):
    """Raised out of the parser's headers-complete callback: the protocol answers 400 with `why`, in the schema of
    the target's `path`."""

    def __init__(self, why: str, path: bytes) -> None:
        super().__init__(why)
        self.why, self.path = why, path


def absolute_target(url: bytes, headers: list[tuple[bytes, bytes]]) -> BadTarget | None:
    """For a target not in origin form (`url` not starting with `/`): None when it may be served, with `headers`'
    Host line set to the target's authority (added when there is none); else the refusal, for the caller to raise."""
    why = _refusal(url, headers)
    if why is None:
        return None
    try:
        path = httptools.parse_url(url).path or b""
    except httptools.HttpParserInvalidURLError:
        path = b""
    return BadTarget(why, path)


def _refusal(url: bytes, headers: list[tuple[bytes, bytes]]) -> str | None:
    if url == b"*":
        return None  # (asterisk form: no host in it; the app answers the path)
    try:
        parts = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        return "the request target is not a valid URL"
    if parts.schema is None or parts.host is None:
        return None  # (origin form without a leading slash: llhttp refuses it before this runs)
    if parts.schema.lower() not in (b"http", b"https"):
        return "the request target's scheme must be http or https"
    if parts.userinfo:
        return "the request target must not carry a user name or password"
    if not parts.path:
        return "the request target has no path"
    host = parts.host if b":" not in parts.host else b"[" + parts.host + b"]"
    authority = host if parts.port is None else b"%s:%d" % (host, parts.port)
    lines = [i for i, (k, _) in enumerate(headers) if k == b"host"]
    if not lines:
        headers.append((b"host", authority))
        return None
    if len(lines) == 1 and not _same(headers[lines[0]][1].strip(), host, parts.port, parts.schema):
        return "the request target names another host than its Host header"
    return None  # (two Host lines: the origin guard's 400)


_DEFAULT_PORTS = {b"http": 80, b"https": 443}


def _same(line: bytes, host: bytes, port: int | None, scheme: bytes) -> bool:
    """Whether a Host line names the target's host (`host`, bracketed when IPv6; `port`), compared as RFC 3986 §6.2.3
    normalises an authority: case, a default port written or not, the root's trailing dot (review34c: `http://
    127.0.0.1/x` with `Host: 127.0.0.1:80`, `http://localhost./x` with `Host: localhost` were 400, wire11's "left")."""
    default = _DEFAULT_PORTS.get(scheme.lower())
    name, colon, given = line.rpartition(b":") if not line.endswith(b"]") else (line, b"", b"")
    if not colon:
        name, line_port = line, default
    elif given.isdigit() and len(given) <= 5:
        line_port = int(given)
    else:
        return False
    return (name.lower().rstrip(b".") == host.lower().rstrip(b".")
            and line_port == (default if port is None else port))
