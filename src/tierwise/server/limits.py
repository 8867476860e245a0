"""Connection- and request-level bounds of `tierwise serve` (config: `server.limits`).

- `GuardedHttpToolsProtocol`: uvicorn's httptools protocol (with header corking) plus a
  deadline for a request's header block (`header_timeout`, answered 408) and for its body
  (`body_timeout`), a cap on the size of a request line and header block (`max_header_bytes`,
  answered 431: uvicorn keeps every header line, so 8 s of header lines at loopback speed,
  without a key, held 2 GB) and on its number of fields (`max_header_count`, 431), and a cap on open connections (`max_connections`, kept below the
  process's open-file limit). At the cap, a connection that is not running a request is closed
  to make room: one of the client (peer address; an IPv6 /64) holding the most connections within the
  network (IPv4 /24, IPv6 /48) holding the most, and of its connections the oldest sending headers or idle between requests, else its oldest sending a
  body. So a crowd of slow, idle or new connections can neither lock out a client that sends its
  request nor cut off a body being uploaded, and a client holding all but one slot in slow bodies
  makes room from its own connections, not from other clients' still sending their headers.
  uvicorn itself has no header or body deadline: a connection that trickles one byte a
  second used to hold its file descriptor for ever. A client that stops reading its answer
  (`write_timeout`) is closed too: uvicorn waited for it for ever, and with it the upstream
  stream and one of the provider's pooled connections. A chunked body's trailer section counts
  against `max_header_bytes` too (431), and reading stays paused while pipelined requests wait
  behind the running one (`PipelineFlow`).
- `BodyBudget`: request-body bytes held across all requests at once; beyond it a request
  is refused with 503 and `Retry-After` before its body is read.
- `check_n`: the largest `n` a client may ask for (each choice may be a paid upstream call).

Hot-path cost: a few dict operations and `time.monotonic()` calls per request (see
docs/security/bounds.md for the measurement); deadlines are enforced by one sweep a second,
not a timer per connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.flow_control import FlowControl

from tierwise.config import ServerLimits
from tierwise.errors import (
    AuthenticationError,
    InvalidRequest,
    PermissionDenied,
    TierwiseError,
    UpstreamError,
)
from tierwise.providers.error_classes import config_fault
from tierwise.server.cork import CorkedHttpToolsProtocol
from tierwise.server.forwarded import TrustedProxies, trusted_proxies
from tierwise.server.header_bytes import HeaderBytes, TooManyFields
from tierwise.server.header_count import HeaderLineCount
from tierwise.server.http10 import close_delimited
from tierwise.server.open_files import connection_cap
from tierwise.server.parse_log import QuietParseErrors
from tierwise.server.request_target import BadTarget, absolute_target
from tierwise.server.upgrade import end_after_answer

SWEEP_S = 1.0
REFUSALS = {  # phase -> (status line, what the client is told)
    "header": (b"HTTP/1.1 408 Request Timeout", "the request's headers did not arrive within "
               "server.limits.header_timeout"),
    "header_size": (b"HTTP/1.1 431 Request Header Fields Too Large", "the request line and headers are larger "
                    "than server.limits.max_header_bytes"),
    "trailer_size": (b"HTTP/1.1 431 Request Header Fields Too Large", "the chunked body's trailer fields are larger "
                     "than server.limits.max_header_bytes"),
    "header_count": (b"HTTP/1.1 431 Request Header Fields Too Large", "the request has more header fields than "
                     "server.limits.max_header_count"),
    "trailer_count": (b"HTTP/1.1 431 Request Header Fields Too Large", "the request's header and trailer fields "
                      "are more than server.limits.max_header_count"),
}
# Scope key set when a request's body missed `body_timeout`: the app answers 408 in its client's schema.
BODY_TIMED_OUT = "tierwise.body_timed_out"
# Scope keys of the work done for a client: the app puts the task doing it (an upstream call, a stream) under
# WORK while the client is waiting for it; when the connection goes, that task is cancelled and CLIENT_LEFT set.
# (uvicorn runs a request to its end after its client left: a request sent and dropped at once cost an upstream
# call each, past every connection bound, 400 at once from one client in a second.)
WORK = "tierwise.work"
CLIENT_LEFT = "tierwise.client_left"


class GatewayBusy(TierwiseError):
    """The gateway is holding as much as it is configured to; the client should come back soon."""

    status = 503
    kind = "overloaded_error"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_header(err: TierwiseError) -> list[tuple[bytes, bytes]]:
    """`Retry-After` for a 429 or 503 that says when to come back (none otherwise): for an open
    breaker, the seconds until it lets a probe through. And `x-should-retry: false` (which the openai and anthropic
    SDKs obey before their own rule, a retry of every 5xx) for an answer no target gave in the format the request
    asked for (`invalid_output`): the same request would meet the same models, paying each again, and Claude Code
    retries a 5xx up to ten times."""
    if getattr(err, "error_class", None) in ("invalid_output", "blocked"):  # (blocked: a WAF's block page)
        return [(b"x-should-retry", b"false")]
    if isinstance(err, (AuthenticationError, PermissionDenied)):
        # The gateway refused the client's own key (or its scope): the same key is refused again. Claude Code
        # retries a 401 ten times with backoff, minutes with nothing printed, unless told not to (as Anthropic does).
        return [(b"x-should-retry", b"false")]
    if isinstance(err, UpstreamError) and config_fault(err):
        # The gateway's key refused or a model its server does not have (or a breaker opened by that): the same
        # request fails the same way until the operator fixes the config; Claude Code retried it for minutes.
        return [(b"x-should-retry", b"false")]
    if err.status == 504 and getattr(err, "answering", False):
        # The upstream had the request and was still writing when `timeouts.read` passed (a model that never
        # stops, without max_tokens): the same request runs away again, and the SDKs' two retries held a local
        # slot for 15 minutes. A timeout before the upstream took the request stays retryable.
        return [(b"x-should-retry", b"false")]
    ra = getattr(err, "retry_after", None)
    if ra is None or err.status not in (429, 503) or not 0 <= ra < 1e9:  # a wait no header can say (inf, nan)
        return []
    return [(b"retry-after", str(int(ra + 0.999)).encode())]


def check_n(n: int, limits: ServerLimits) -> None:
    if n > limits.max_n:
        raise InvalidRequest(f"`n` is {n}; this gateway allows at most {limits.max_n} choices per request "
                             "(server.limits.max_n)")


# ---------------------------------------------------------------------------- body bytes

HELD = "tierwise.body_bytes"  # scope key: the bytes this request holds in the budget


# A request body above this size is parsed and decoded in the big-body lane (App.decode_big): one at a time.
# Its parse and decode hold the event loop for ~15 ms per MiB of chat turns on this machine kind; an
# ordinary chat body (Claude Code's included) is far below it and never waits.
BIG_BODY_BYTES = 2 * 1024 * 1024


HOLDER = "tierwise.body_holder"  # scope key: the key name whose share those bytes count in


class BodyBudget:
    """Request-body bytes held at once, in all and (`per_key`, when the gateway has keys) per key name: one
    key that sent a few large bodies slowly, or whose large requests ran long, held the whole budget, and
    every other key's requests got 503 for as long as it liked."""

    __slots__ = ("limit", "held", "per_key", "by_key")

    def __init__(self, limit: int, per_key: int | None = None) -> None:
        self.limit = limit
        self.held = 0
        self.per_key = per_key
        self.by_key: dict[str, int] = {}

    def take(self, scope: dict[str, Any], n: int) -> None:
        """Count `n` more body bytes for this request, or refuse it when the budget (or its key's share) is spent."""
        if self.held + n > self.limit:
            raise GatewayBusy("the gateway is receiving as many request bytes as it is configured to hold "
                              "(server.limits.max_body_bytes_in_flight); retry shortly")
        if self.per_key is not None:
            holder = scope.get(HOLDER)
            if holder is None:
                key = scope.get("tierwise.key")
                holder = scope[HOLDER] = key.name if key is not None else ""
            mine = self.by_key.get(holder, 0) + n
            if mine > self.per_key:
                raise GatewayBusy("this key's requests hold as many body bytes as one key may (half of "
                                  "server.limits.max_body_bytes_in_flight); retry when one has ended")
            self.by_key[holder] = mine
        self.held += n
        scope[HELD] = scope.get(HELD, 0) + n

    def give_back(self, scope: dict[str, Any]) -> None:
        n = scope.pop(HELD, 0)
        if n:
            self.held -= n
            holder = scope.pop(HOLDER, None)
            if holder is not None:
                left = self.by_key[holder] - n
                if left:
                    self.by_key[holder] = left
                else:
                    del self.by_key[holder]


# ---------------------------------------------------------------------------- connections


class ConnectionGuard:
    """Deadlines and the connection cap, shared by every connection of one server."""

    def __init__(self, limits: ServerLimits, keep_alive: float) -> None:
        self.header_timeout = limits.header_timeout
        self.body_timeout = limits.body_timeout
        self.max_header_bytes = limits.max_header_bytes
        self.max_header_count = limits.max_header_count
        self.max_header_lines = limits.max_header_count + 1  # (and the request line)
        self.idle_timeout = keep_alive + SWEEP_S  # uvicorn closes idle ones first; this is a backstop
        self.max_connections = connection_cap(limits.max_connections)
        self.write_timeout = limits.write_timeout
        self.prefixes = (limits.network_prefix_v4, limits.network_prefix_v6)  # `site_group`'s networks
        # Connections whose client stopped reading the answer (the transport paused writing): deadline.
        self.stalled: dict[GuardedHttpToolsProtocol, float] = {}
        # Connections not running a request, oldest first: protocol -> (deadline, phase).
        self.waiting: dict[GuardedHttpToolsProtocol, tuple[float, str]] = {}
        # Those of them not sending a body (waiting for headers, idle, a timed-out body's answer), oldest first:
        # the first to make room at the cap. A body being sent was cut off by anyone opening connections.
        self.spare: dict[GuardedHttpToolsProtocol, None] = {}
        self.count = 0
        # Open connections per client (peer group, see `peer_group`): at most one entry per open connection.
        self.peers: dict[str, int] = {}
        # And per network around it (`site_group`): one attacker holding many addresses of one /48 (65,536 /64s)
        # or /24 was as many clients, and at equal counts another client's connection sending its headers went
        # first (wire4).
        self.sites: dict[str, int] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self.closed_slow = 0  # for tests and logs
        self.evicted = 0

    def wait(self, conn: GuardedHttpToolsProtocol, phase: str, seconds: float) -> None:
        waiting = self.waiting
        waiting.pop(conn, None)  # re-inserted at the end: the dict stays ordered by phase start
        waiting[conn] = (time.monotonic() + seconds, phase)
        if phase != "body":
            spare = self.spare
            spare.pop(conn, None)
            spare[conn] = None
        else:
            self.spare.pop(conn, None)

    def opened(self, conn: GuardedHttpToolsProtocol, loop: asyncio.AbstractEventLoop) -> bool:
        """Register a new connection; False when it must be closed at once."""
        self.count += 1
        peers = self.peers
        peers[conn.peer] = peers.get(conn.peer, 0) + 1
        sites = self.sites
        sites[conn.site] = sites.get(conn.site, 0) + 1
        if self._sweep is None:
            self._sweep = loop.call_later(SWEEP_S, self.sweep, loop)
        if self.count > self.max_connections:
            if not self.waiting:
                return False
            victim = self._victim()
            self.evicted += 1
            self.spare.pop(victim, None)
            victim.cut(self.waiting.pop(victim)[1])
        self.wait(conn, "header", self.header_timeout)
        return True

    def _victim(self) -> GuardedHttpToolsProtocol:
        """The waiting connection to close at the cap: of the network holding the most open connections, the
        client there holding the most, its oldest not sending a body, else its oldest sending one. (By age alone, a client holding all but one
        slot in slow bodies closed every other client's connection still sending its headers, one per
        connection it opened: its own bodies, being sent, went last.) One pass over the waiting connections,
        only at the cap."""
        peers, sites, spare = self.peers, self.sites, self.spare
        best: GuardedHttpToolsProtocol | None = None
        top = (-1, -1, False)
        for c in self.waiting:  # oldest first: a tie keeps the older
            k = (sites.get(c.site, 0), peers.get(c.peer, 0), c in spare)
            if k > top:
                best, top = c, k
        assert best is not None
        return best

    def closed(self, conn: GuardedHttpToolsProtocol) -> None:
        self.count -= 1
        self._uncount(conn)
        self.waiting.pop(conn, None)
        self.spare.pop(conn, None)
        self.stalled.pop(conn, None)

    def _uncount(self, conn: GuardedHttpToolsProtocol) -> None:
        for counts, key in ((self.peers, conn.peer), (self.sites, conn.site)):
            n = counts.get(key, 0) - 1
            if n > 0:
                counts[key] = n
            else:
                counts.pop(key, None)

    def regroup(self, conn: GuardedHttpToolsProtocol, peer: str) -> None:
        """A trusted proxy's connection now carries `peer`'s request (server/forwarded.py): counted as its."""
        if peer != conn.peer:
            self._uncount(conn)
            conn.peer, conn.site = peer, site_group(peer, *self.prefixes)
            self.peers[peer] = self.peers.get(peer, 0) + 1
            self.sites[conn.site] = self.sites.get(conn.site, 0) + 1

    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        late = [(c, phase) for c, (deadline, phase) in self.waiting.items() if deadline <= now]
        for c, phase in late:
            del self.waiting[c]
            self.spare.pop(c, None)
            self.closed_slow += 1
            c.cut(phase)
        for c in [c for c, deadline in self.stalled.items() if deadline <= now]:
            del self.stalled[c]
            self.closed_slow += 1
            c.cut("write")
        self._sweep = loop.call_later(SWEEP_S, self.sweep, loop) if self.count > 0 else None


class PipelineFlow(FlowControl):
    """uvicorn's flow control, except that reading stays paused while requests wait behind the running one.

    uvicorn pauses reading when a request arrives behind another (pipelined) but resumes it whenever a request
    reads its body and whenever an answer ends, and each read may queue several more requests: a client that
    pipelined 1 GB of 100 KB requests without reading the answers made the gateway hold ~490 MB of queued
    bodies (outside `max_body_bytes_in_flight`, which counts bodies as requests read them), no key needed.
    Queued requests are whole (a request's body is complete before the next one's headers), so the running
    one never waits for these bytes; the last one queued may be partial, and reading resumes once it runs.
    Cost: nothing while reading is not paused (the test below is behind uvicorn's own `read_paused`)."""

    def __init__(self, transport: asyncio.Transport, pipeline: Any) -> None:
        super().__init__(transport)
        self._pipeline = pipeline

    def resume_reading(self) -> None:
        if self.read_paused and not self._pipeline:
            self.read_paused = False
            self._transport.resume_reading()


class GuardedHttpToolsProtocol(HeaderLineCount, HeaderBytes, CorkedHttpToolsProtocol):
    """uvicorn's httptools protocol under a `ConnectionGuard` (set on a subclass per server)."""

    guard: ClassVar[ConnectionGuard]
    quiet_log: ClassVar[QuietParseErrors]
    # Bytes received since the current request line began, while its header block is unfinished, for the field
    # count's reads (its exact size: server/header_bytes.py).
    _header_bytes = 0
    _in_header = True
    # The phase the parser's callbacks reached: "header", "body", or None once a whole request is
    # in (the app owns the connection). The guard hears of it once per received chunk, after the
    # parser ran: a request that arrives in one read costs one guard update, not three.
    _phase: str | None = "header"

    # The header block's lines are counted in each read before the parser sees it (server/header_count.py).

    def data_received(self, data: bytes) -> None:
        if self._in_header:
            end = data.find(b"\r\n\r\n")
            if end < 0 or self._header_lines:  # (a header block over several reads)
                self._header_bytes += len(data)
                if self._count_lines(data, end):
                    return
            elif data.count(b"\n") > self.guard.max_header_lines:  # (one read: the usual request has few lines)
                self._header_bytes += len(data)
                self._many_lines(data, end)
                return
            # (else the block ends in this read: its bytes need no count; a request pipelined behind it in the
            # read begins its own at 0. Skipped, as before wire8 on a keep-alive request's first read: 10 bytecodes)
        before = self._phase
        self._data, self._pos, self._start = data, 0, 0  # (the parser's position in it: server/header_bytes.py)
        super().data_received(data)
        self._data = b""  # (not held until the next read)
        if self._in_header and self._start < len(data) and self._block_unfinished(data) > self.guard.max_header_bytes:
            self.cut("header_size")
            return
        if self._after_chunk_header and self._trailer_read(data) > self.guard.max_header_bytes:
            self.cut("trailer_size")  # (a read ended after a chunk header and no body: trailers so far)
            return
        phase = self._phase
        if phase is not before:
            guard = self.guard
            if phase is None:
                guard.waiting.pop(self, None)  # the app owns the connection until its answer is sent
                guard.spare.pop(self, None)
            else:
                guard.wait(self, phase, guard.header_timeout if phase == "header" else guard.body_timeout)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.logger = self.quiet_log  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        """Unparseable HTTP: a 400 with an error body in the OpenAI (or, on /v1/messages, Anthropic)
        schema, as every other error of the gateway (uvicorn's was plain text)."""
        if self._trailer_cut:
            self.cut(self._trailer_cut)
            return
        if self._too_big or len(self.headers) > self.guard.max_header_count:
            self.cut("header_size" if self._too_big else "header_count")
            return
        url, why = getattr(self, "url", b"") or b"", "the request is not valid HTTP/1.1"
        if self._bad_target is not None:
            url, why = self._bad_target.path, self._bad_target.why
        from tierwise.wire import anthropic_messages, openai_chat

        codec = anthropic_messages if url.startswith(b"/v1/messages") else openai_chat
        body = codec.encode_error(InvalidRequest(why))
        self.last(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                  b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))

    def _unsupported_upgrade_warning(self) -> None:
        """An `Upgrade:` request, served plainly: then the connection ends, unlogged (server/upgrade.py)."""
        end_after_answer(self)

    peer = ""  # the client's group at the cap (`peer_group`)
    site = ""  # and its network's (`site_group`)
    proxies: ClassVar[TrustedProxies | None] = None  # `server.limits.trusted_proxies`
    proxy_peer = ""  # a trusted proxy's connection: the proxy's own group, between requests

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.peer = peer_group(self.client)
        if self.proxies is not None and self.proxies.trusts(self.client[0] if self.client else None):
            self.proxy_peer = self.peer
        self.site = site_group(self.peer, *self.guard.prefixes)
        self.flow = PipelineFlow(self.flow._transport, self.pipeline)  # (before any request's cycle holds it)
        if not self.guard.opened(self, self.loop):
            transport.abort()  # every slot runs a request: refuse this one (connection_lost counts it down)

    def pause_writing(self) -> None:
        """The client stopped reading (its socket and our buffer are full): uvicorn's `send` now waits
        for it with no deadline, holding the request's task and its upstream stream."""
        super().pause_writing()
        self.guard.stalled[self] = time.monotonic() + self.guard.write_timeout

    def resume_writing(self) -> None:
        super().resume_writing()
        self.guard.stalled.pop(self, None)

    # The cycle whose request is being answered. uvicorn remembers only the newest one it parsed: with
    # requests pipelined behind it, the one running never heard its client leave (a stream ran to its end).
    running: Any = None

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        self.running = cycle
        if cycle.scope["http_version"] == "1.0":
            close_delimited(cycle)  # an HTTP/1.0 client is never sent chunked (server/http10.py)
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed(self)
        running, newest = self.running, self.cycle
        super().connection_lost(exc)
        cycles: tuple[Any, ...] = (running, newest) if running is not newest else (newest,)
        for cycle in cycles:
            if cycle is None or cycle.response_complete:
                continue
            if cycle is not newest:  # (uvicorn's own marks only the newest)
                cycle.disconnected = True
                cycle.message_event.set()
            scope = cycle.scope
            work = scope.pop(WORK, None)
            if work is not None:  # nobody will read the answer: stop making it
                scope[CLIENT_LEFT] = True
                work.cancel()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_header, self._phase = True, "header"
        self._start, self._before = self._pos, 0

    def on_headers_complete(self) -> None:
        # (raised out of a parser callback, httptools stops and uvicorn calls send_400_response: 431 there)
        if len(self.headers) > self.guard.max_header_count or not self._block_fits():
            raise TooManyFields
        if self.url[:1] != b"/":  # absolute form: its authority is the Host the guards check (server/request_target.py)
            self._bad_target = absolute_target(self.url, self.headers)
            if self._bad_target is not None:
                raise self._bad_target
        self._in_header = False
        if self.proxy_peer:
            self._forwarded_client()
        super().on_headers_complete()
        self._phase = "body"

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = None
        self._in_header, self._header_bytes, self._start = True, 0, self._pos

    def _forwarded_client(self) -> None:
        """The request's client as the trusted proxy reports it: its address in the scope (logs) and the
        connection counted as that client's at the cap while the request runs (else the proxy's)."""
        assert self.proxies is not None
        addr = self.proxies.client(self.headers)
        if addr is None:
            self.guard.regroup(self, self.proxy_peer)
            return
        self.scope["client"] = (addr, 0)
        self.guard.regroup(self, peer_group((addr, 0)))

    _bad_target: BadTarget | None = None  # an absolute-form target refused (answered 400 by `send_400_response`)
    _refusal: bytes | None = None  # what to answer once the requests read before a refused one are answered

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.running.response_complete or self.transport.is_closing():
            # A request queued behind it runs now: the app owns the connection (before wire9 it was marked idle
            # once the queue was empty, and the sweep cut the running request at the idle deadline, 31 s), or the
            # answer closed the connection.
            return
        if self._refusal is not None:  # a block refused while requests read before it ran: their answers are out
            self.transport.write(self._refusal)
            self.transport.close()
            return
        if self.proxy_peer:  # idle, the connection is the proxy's pool's again
            self.guard.regroup(self, self.proxy_peer)
        self._phase = "idle"
        self.guard.wait(self, "idle", self.guard.idle_timeout)

    def last(self, answer: bytes) -> None:
        """A refusal of a request the app never saw, then close; behind requests still running or queued, after
        their answers (`on_response_complete`). (Before review32c a 400, unparseable HTTP, there dropped them, or was
        written into the middle of a streamed answer.)"""
        cycle = self.cycle
        if cycle is None or cycle.response_complete or cycle.more_body:  # (mid-body: the app sees its client go)
            self.transport.write(answer)
            self.transport.close()
            return
        if self._refusal is None:
            self._refusal = answer
        self.transport.pause_reading()
        self.guard.waiting.pop(self, None)  # (bounded now by the running requests' own deadlines)
        self.guard.spare.pop(self, None)

    def cut(self, phase: str) -> None:
        """Close a connection that took too long (or must make room): 408 if no request was read yet;
        431 for a header block past max_header_bytes. A body that stopped arriving is the app's to
        answer (a 408 in the schema of the API the client spoke, then the connection closes); if no
        answer has started `header_timeout` later, the connection is dropped."""
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        if phase == "body" and cycle is not None and not cycle.response_started and not cycle.disconnected:
            cycle.scope[BODY_TIMED_OUT] = True  # type: ignore[literal-required]
            cycle.keep_alive = False  # the rest of the body may still come: never read it as a request
            cycle.message_event.set()  # wakes the app's receive()
            self.guard.wait(self, "answer", self.guard.header_timeout)
            return
        if phase in ("header", "header_size", "header_count"):
            self.last(refusal(phase, getattr(self, "url", b"") if self._in_header else b""))
        elif phase in ("trailer_size", "trailer_count") and cycle is not None and not cycle.response_started:
            transport.write(refusal(phase, cycle.scope["path"].encode("latin-1", "replace")))
            transport.close()  # the app, waiting for the body's end, sees the client go away
        else:
            transport.abort()  # mid-body: the app sees the client go away


def peer_group(client: tuple[str, int] | None) -> str:
    """Whose connection this is, for the cap's fairness: the peer's IPv4 address, or its IPv6 /64 (one
    host usually holds a whole /64). Behind a reverse proxy every connection is the proxy's: one group."""
    if not client:
        return ""
    host = client[0]
    if ":" not in host:
        return host
    try:
        addr = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if addr.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket: its own address, not all IPv4's /64
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((addr, 64), strict=False).network_address)


def site_group(peer: str, v4: int = 32, v6: int = 48) -> str:
    """The network around a peer group, for the cap's fairness: an IPv4 /`v4`, an IPv6 /`v6` (`server.limits.
    network_prefix_v4`/`_v6`; by default each IPv4 address, an IPv6 /48: what one site or customer is usually
    given). At the cap the network holding the most connections makes room first, from the client in it holding
    the most: one host spread over a /48's /64s is one network, and a site's other users lose a connection only
    when the site, together, holds the most. IPv4 is not grouped by default (review27b): an office or a
    carrier's NAT pool of many users in one /24 made room before one outside address holding fewer in all."""
    if ":" not in peer:
        if v4 >= 32 or peer.count(".") != 3:
            return peer
        try:
            return str(ipaddress.IPv4Network((peer, v4), strict=False).network_address)
        except ValueError:
            return peer
    try:
        return str(ipaddress.IPv6Network((ipaddress.IPv6Address(peer), v6), strict=False).network_address)
    except ValueError:
        return peer


def refusal(phase: str, url: bytes) -> bytes:
    """A whole response refusing a request the app never saw: with an error body in the schema of the
    API its path belongs to once the request line (or its start) arrived, empty before."""
    status, message = REFUSALS[phase]
    body = b""
    if url:
        from tierwise.wire import anthropic_messages, openai_chat

        codec = anthropic_messages if url.startswith(b"/v1/messages") else openai_chat
        body = codec.encode_error(InvalidRequest(message, status=int(status.split()[1])))
    return b"%s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (
        status, len(body), body) if body else status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def guarded_protocol(limits: ServerLimits, keep_alive: float) -> type[GuardedHttpToolsProtocol]:
    """A protocol class bound to a fresh guard (uvicorn instantiates the class per connection)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"guard": ConnectionGuard(limits, keep_alive), "proxies": trusted_proxies(limits),
                 "quiet_log": QuietParseErrors(logging.getLogger("uvicorn.error"))})
