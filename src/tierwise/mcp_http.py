"""`tierwise mcp --transport http`: who may talk to the MCP server over HTTP.

The tools run ensembles and write files, so the HTTP transport is never open: every request
carries `Authorization: Bearer <token>` (compared in constant time) or gets a 401 with
`WWW-Authenticate: Bearer`. The token comes from `TIERWISE_MCP_TOKEN` or is generated once
and kept, mode 0600, in the tierwise home folder. Host and Origin headers are checked by the
`mcp` package's own DNS-rebinding protection (TransportSecuritySettings), which we always turn
on: loopback names by default, plus the names the operator allows for a non-loopback bind.
stdio is untouched: the client that spawns it is trusted.

Per client (its address, as the gateway counts it: server/stream_cap.py) at most `server.limits.max_requests_per_client`
POSTs run at once (each a tool call: an ensemble run, its models' calls) and their bodies count in
`server.limits.max_body_bytes_in_flight`: before, one token holder's 4,000 connections each held a tool call and a
body of up to `max_body_bytes` (32 MiB), the gateway's connection cap the only bound. Past either: 429 / 503 with
`Retry-After: 1`, as a JSON-RPC error. A POST whose client leaves before its answer has its tool call cancelled
in its session (the mcp package lets it run on, no longer counted: review30e).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from tierwise.errors import ConfigError, RateLimited
from tierwise.mcp_sessions import ClientSessions, Session, hint, untrusted_forwarding
from tierwise.secret_scrub import register
from tierwise.server.limits import BodyBudget, GatewayBusy
from tierwise.server.limits_settings import ServerLimits
from tierwise.server.origin_guard import valid_host
from tierwise.server.stream_cap import CALL_SLOT, ClientCap

log = logging.getLogger("tierwise.mcp")
TOKEN_ENV = "TIERWISE_MCP_TOKEN"
TOKEN_FILE = "mcp-token"
MAX_CANCELS = 16  # requests of one POST cancelled when its client leaves (a batch: more are not looked at)
MIN_TOKEN_CHARS = 32
# Sessions open at once (each holds a server task and its streams, ~40 KiB: the mcp package's default of
# 10,000 let one token holder keep ~400 MB) and how long an idle one lives. One token is one user's
# agents: a client past the bound gets 503 until one of its sessions ends (DELETE) or idles out.
MAX_SESSIONS = 100
SESSION_IDLE_S = 30 * 60
# Sessions one client (address, and its network: server/stream_cap.py) holds: at this count its next session closes
# its own least recently used one (mcp_sessions.py). Before, one client could hold all MAX_SESSIONS.
MAX_SESSIONS_PER_CLIENT = 25
# How long a session's calls may run before it may be closed for a new session at either bound (its call cancelled):
# an ensemble run may rightly take minutes, so only past this, and only after idle and listening sessions (wire14:
# before, sessions running calls that never ended were never closed, and took the server's room while they ran).
MAX_CALL_S = 15 * 60
_LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
_LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


def state_dir() -> Path:
    """The user's tierwise folder (the global ensemble level lives in its `ensembles/`)."""
    return Path(os.environ.get("TIERWISE_HOME") or Path.home() / ".config" / "tierwise")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_token(folder: Path | None = None) -> tuple[str, Path | None, bool]:
    """(token, file it is kept in or None for the environment, whether it was just generated). The token is
    registered with the scrubber (secret_scrub): from here on no log line, span or error message carries it.
    From the file or generated it was unknown to the scrubber (session 25), and `$TIERWISE_MCP_TOKEN` was known
    only when written without the spaces or newline this function strips."""
    token, path, fresh = _load_token(folder)
    register((token,))
    return token, path, fresh


def _load_token(folder: Path | None) -> tuple[str, Path | None, bool]:
    env = os.environ.get(TOKEN_ENV)
    if env is not None:
        if len(env.strip()) < MIN_TOKEN_CHARS:
            raise ConfigError(f"{TOKEN_ENV} must hold at least {MIN_TOKEN_CHARS} characters")
        return env.strip(), None, False
    folder = folder or state_dir()
    path = folder / TOKEN_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return _generate(path), path, True
    except OSError as e:
        raise ConfigError(f"cannot read the MCP token: {e.strerror}", file=str(path)) from None
    with os.fdopen(fd, encoding="utf-8") as f:
        st = os.fstat(f.fileno())
        if st.st_uid != os.getuid() or st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError("the MCP token file must belong to you with mode 0600 (others could read it); "
                              "delete it to get a new token", file=str(path))
        token = f.read().strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError("the MCP token file is too short; delete it to get a new token", file=str(path))
    return token, path, False


def _generate(path: Path) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL: two servers starting at once do not overwrite each other's token.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


def transport_security(host: str, allowed_hosts: list[str]) -> TransportSecuritySettings:
    """Host/Origin allow-lists for the mcp package's DNS-rebinding check, always on."""
    hosts = list(_LOOPBACK_HOSTS)
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        hosts.append(f"[{host}]:*" if ":" in host else f"{host}:*")
    for h in allowed_hosts:
        hosts.append(h if ":" in h.rsplit("]", 1)[-1] else f"{h}:*")
    origins = _LOOPBACK_ORIGINS + [f"{scheme}://{h}" for h in hosts[len(_LOOPBACK_HOSTS):]
                                   for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


class BearerAuth:
    """ASGI middleware: every HTTP request needs the bearer token, or it is answered 401 here; a
    request body larger than `max_body` (the gateway's `server.max_body_bytes`) is answered 413
    here too: the mcp package reads a whole body into memory with no bound."""

    def __init__(self, app: ASGIApp, token: str, max_body: int = 32 * 1024 * 1024,
                 limits: ServerLimits | None = None, sessions_per_client: int = MAX_SESSIONS_PER_CLIENT) -> None:
        self.app = app
        self._token = hashlib.sha256(token.encode()).digest()  # compared as digests: equal lengths, so timing
        # tells not even the token's length (compare_digest returns at once for values of different lengths)
        self.max_body = max_body
        limits = limits or ServerLimits()
        self.calls = ClientCap(limits.max_requests_per_client, limits.network_prefix_v4, limits.network_prefix_v6,
                               what="MCP requests in flight", setting="server.limits.max_requests_per_client",
                               slot=CALL_SLOT)
        self.budget = BodyBudget(limits.max_body_bytes_in_flight)
        self.sessions = ClientSessions(sessions_per_client, SESSION_IDLE_S, limits.network_prefix_v4,
                                       limits.network_prefix_v6, max_open=MAX_SESSIONS, max_call_s=MAX_CALL_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the session manager's start and stop
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # a websocket (when uvicorn has a websocket library): no way past the token
            await send({"type": "websocket.close", "code": 1008})
            return
        if (bad := _ambiguous_host(scope)) is not None:
            await _refuse(send, 400, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":%s}}'
                          % json.dumps(bad).encode())
            return
        if not self._authorized(scope):
            await _refuse(send, 401, b'{"error":"invalid_token","error_description":"a valid bearer token is required"}',
                          [(b"www-authenticate", b'Bearer realm="tierwise-mcp", error="invalid_token"')])
            return
        if any(k == b"last-event-id" for k, _ in scope.get("headers", [])):
            # The package resumes a stream only from an event store, and this server keeps none: with the header it
            # returned no answer at all (a bare 500, "Internal Server Error", wire11). Without it: a fresh stream.
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"last-event-id"]}
        held: dict[str, Any] = {"client": scope.get("client")}  # what this request counts (not the app's scope)
        post = scope.get("method") == "POST"
        sid = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"mcp-session-id"), None)
        session: tuple[Session, float] | None = None
        try:
            if post:  # a tool call (a GET is a session's event stream: MAX_SESSIONS)
                self.calls.take(held)
            if sid is None and post:  # (opens a session if the app accepts it: `watched` in _run)
                headers = scope.get("headers", [])
                held["opening"] = opening = {"client": held["client"], "hint": hint(headers)}  # (until opened)
                if not self.sessions.warned and (via := untrusted_forwarding(headers, held["client"])) is not None:
                    self.sessions.warned = True
                    log.warning("MCP requests from %s carry %s, but it is not in server.limits.trusted_proxies: "
                                "every client behind it counts as one (MAX_SESSIONS_PER_CLIENT sessions, "
                                "max_requests_per_client calls, for all of them)", held["client"][0], via)
                victim = self.sessions.admit(opening)
                if victim is not None:
                    await self._end_session(scope, victim)
            elif sid is not None:
                session = self.sessions.start(sid, post)
            await self._run(scope, receive, send, held)
        except (RateLimited, GatewayBusy) as e:
            status = 429 if isinstance(e, RateLimited) else 503
            await _refuse(send, status, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":%s}}'
                          % json.dumps(e.message).encode(), [(b"retry-after", b"1")])
        finally:
            self.budget.give_back(held)
            self.calls.give_back(held)
            if held.get("opening") is not None:  # no session opened
                self.sessions.cap.give_back(held["opening"])
            if session is not None and sid is not None:
                self.sessions.end(sid, *session, post, scope.get("method", ""), scope.get("path", ""),
                                  held.get("status", 0))

    async def _end_session(self, scope: Scope, s: Session) -> None:
        """A DELETE of session `s` into the app, as its client would send it (the answer discarded)."""
        headers = [*s.headers, (b"mcp-session-id", s.sid.encode())]
        await self._into_app({**scope, "method": "DELETE", "path": s.path, "headers": headers}, b"")

    async def _run(self, scope: Scope, receive: Receive, send: Send, held: dict[str, Any]) -> None:
        body = await self._read_body(scope, receive, held)
        if body is None:
            await _refuse(send, 413, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,'
                          b'"message":"the request body is larger than server.max_body_bytes"}}')
            return
        sent = left = answered = False

        async def replay() -> Any:  # the body read here, then whatever the client sends next (a disconnect)
            nonlocal sent, left
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            msg = await receive()
            left = left or msg["type"] == "http.disconnect"
            return msg

        async def watched(msg: Any) -> None:
            nonlocal answered
            if "plain" in held:  # (wire12) a refusal of the package's in plain text: its words as a JSON-RPC error
                if msg["type"] != "http.response.body":
                    return
                held["plain_text"] = held.get("plain_text", b"") + bytes(msg.get("body", b""))[:512]
                if msg.get("more_body", False):
                    return
                start, text = held.pop("plain"), held.pop("plain_text")[:512].decode("utf-8", "replace")
                body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": text}}).encode()
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in _BODY_HEADERS]
                await send({**start, "headers": [*headers, (b"content-type", b"application/json"),
                                                 (b"content-length", str(len(body)).encode())]})
                msg = {"type": "http.response.body", "body": body}
            elif msg["type"] == "http.response.start" and msg["status"] >= 400 and not any(
                    k.lower() == b"content-type" for k, _ in msg.get("headers", [])):
                held["status"], held["plain"] = msg["status"], msg  # (the package's guard: 400, 403, 421)
                return
            if msg["type"] == "http.response.start":
                held["status"] = msg["status"]  # (read by __call__: a 404 or a DELETE's answer ends its session)
                opening = held.get("opening")
                new = next((v for k, v in msg.get("headers", []) if k.lower() == b"mcp-session-id"), None)
                if opening is not None and msg["status"] < 400 and new is not None:
                    self.sessions.opened(new.decode("latin-1"), opening, scope.get("headers", []),
                                         scope.get("path", ""))
                    held["opening"] = None
            answered = answered or (msg["type"] == "http.response.body" and not msg.get("more_body", False))
            await send(msg)

        await self.app(scope, replay, watched)
        if "status" not in held and not left:  # the package returned without an answer: never uvicorn's bare 500
            await _refuse(send, 500, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,'
                          b'"message":"the MCP server gave no answer to this request"}}')
        if left and not answered:
            await self._cancel(scope, body)

    async def _cancel(self, scope: Scope, body: bytes) -> None:
        """The requests of a POST whose client left before their answer, cancelled in their session (MCP's
        `notifications/cancelled`, as the client would send it). Else the tool call ran on in the session after its
        count was given back: a client leaving each POST at its first byte ran any number of tool calls at once
        under a cap of one (review30e). Sent while the POST still counts."""
        try:
            data = json.loads(body)
        except ValueError:
            return
        ids = [m["id"] for m in (data if isinstance(data, list) else [data])[:MAX_CANCELS]
               if isinstance(m, dict) and "method" in m and isinstance(m.get("id"), (str, int))]
        for rid in ids:
            await self._notify(scope, json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                                  "params": {"requestId": rid, "reason": "the client left"}}).encode())

    async def _notify(self, scope: Scope, note: bytes) -> None:
        """`note` POSTed to the app as the client's (its session's headers), the answer (202) discarded."""
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        await self._into_app({**scope, "headers": [*headers, (b"content-length", str(len(note)).encode())]}, note)

    async def _into_app(self, scope: Scope, body: bytes) -> None:
        """A request of the gateway's own (`scope` with `body`) into the app as its client would send it, the answer
        discarded."""
        given = False

        async def receive() -> Any:
            nonlocal given
            if given:
                return {"type": "http.disconnect"}
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def discard(msg: Any) -> None:
            pass

        await self.app(scope, receive, discard)

    async def _read_body(self, scope: Scope, receive: Receive, held: dict[str, Any]) -> bytes | None:
        """The whole body, or None once it is larger than `max_body` (never held beyond it); its bytes count in
        `held` (GatewayBusy past `max_body_bytes_in_flight`)."""
        for k, v in scope.get("headers", []):
            if k.lower() == b"content-length" and v.strip().isdigit() and int(v) > self.max_body:
                return None
        parts: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break  # the client left: the app sees an empty body and answers no one
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            self.budget.take(held, len(chunk))
            parts.append(chunk)
            if not msg.get("more_body", False):
                break
        return b"".join(parts)

    def _authorized(self, scope: Scope) -> bool:
        values = [v for k, v in scope.get("headers", []) if k.lower() == b"authorization"]
        if len(values) != 1:
            return False
        scheme, _, given = values[0].partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(hashlib.sha256(given.strip()).digest(), self._token)


def _ambiguous_host(scope: Scope) -> str | None:
    """Why a request's Host/Origin lines are refused 400 (RFC 9112 §3.2), or None. The mcp package's rebinding guard
    reads the first line of each and matches `127.0.0.1:*` against any text after the colon: two Host lines with
    loopback's first, `Host: 127.0.0.1:80@evil.example` (a URL parser in a proxy reads evil.example), and two Origins
    were served (wire11), as the gateway's own guard refuses them (server/origin_guard.py)."""
    hosts = [v for k, v in scope.get("headers", []) if k == b"host"]
    if len(hosts) > 1 or sum(k == b"origin" for k, _ in scope.get("headers", [])) > 1:
        return "the request has more than one Host or Origin header line"
    if not hosts:
        return None if scope.get("http_version") == "1.0" else "an HTTP/1.1 request must carry one Host header"
    return None if valid_host(hosts[0].decode("latin-1")) else "the Host header is not a host or host:port"


_BODY_HEADERS = (b"content-type", b"content-length")


async def _refuse(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *(extra or []), *([(b"connection", b"close")] if status == 413 else [])]})
    await send({"type": "http.response.body", "body": body})


def connect_hint(url: str, token: str) -> str:
    return (f"  claude mcp add --transport http tierwise {url} --header \"Authorization: Bearer {token}\"\n"
            f"  (any MCP client: send the header `Authorization: Bearer {token}`)")


def build_app(server: Any, *, host: str, token: str, allowed_hosts: list[str],
              max_body: int = 32 * 1024 * 1024, limits: ServerLimits | None = None) -> ASGIApp:
    """The mcp package's streamable-HTTP app, behind the bearer check, a body-size bound and the per-client
    bounds (`limits`), Host/Origin checked."""
    app = server.streamable_http_app(transport_security=transport_security(host, allowed_hosts), host=host,
                                     max_sessions=MAX_SESSIONS, session_idle_timeout=SESSION_IDLE_S)
    return BearerAuth(app, token, max_body, limits)
