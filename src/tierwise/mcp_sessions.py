"""MCP sessions open per client over HTTP (used by mcp_http.BearerAuth).

The mcp package bounds the sessions open at once for the whole server (`mcp_http.MAX_SESSIONS`): one token holder
that opened sessions and never ended them (an agent restarted in a loop, a script) took every one, and every other
client's `initialize` got 503 until they idled out, 30 minutes later. Now one client (its address as the gateway
counts clients, and its network: server/stream_cap.py) holds at most `per_client`; at that count its next
`initialize` first closes its own least recently used session with no POST running (a DELETE into the app, as the
client itself would end it), or is refused 429 when every one of them is running a call. A client that forgets
its sessions so never locks itself out, and never takes the others' room.

Behind a reverse proxy not in `server.limits.trusted_proxies` every client is the proxy's address, one client here.
A session with a request in flight (a call, or its GET event stream: a client listening) is never closed for a new
one, and of the idle ones the opener's own go first, told by its `User-Agent` and forwarded-for headers (`hint`):
before wire10 an agent restarting in a loop behind the proxy closed every other agent's session, live ones included.
The hint is the client's word: it chooses among the sessions that may be closed and raises no count.

At the server's bound (`max_open`, mcp_http.MAX_SESSIONS) a new session closes an idle one of the client holding the
most, when that client holds more than the opener will (its least recently used; never one running a call),
else it is refused 503 (`Retry-After`). Before (wire11's "left"), four clients holding 25 sessions each left every
other client the package's 503 until one idled out, 30 minutes later; a client holding no more than the opener is
never closed for it, so many addresses holding one session each cannot churn out another client's only one.
The sessions a client got so within the idle window count as held by it for this rule (review35b: one address that
opened, deleted its session and opened again ended another client's live sessions one after another).
With no idle one, a session that only listens (its GET event stream open, no call running) is ended the same way
(wire12: four clients listening on 25 sessions each still locked every other client out while they listened); its
stream ends and its next request gets 404, so its MCP client opens a new session. A call is cut only once it has run
`max_call_s` (mcp_http.MAX_CALL_S), and then last, after idle and listening sessions, at either bound (wire14: before,
sessions whose calls never ended, a tool waiting on a model that trickles, a hostile client's own long calls, were
never closed: one address running 25 of them kept its 25 sessions and their memory, four kept every other client out,
for as long as the calls ran). Its call is cancelled with the session (the DELETE) and its client gets its answer's end.

Which sessions are open is followed from the outside (the package keeps its table private): one opens with a
request without `mcp-session-id` answered below 400 with one, and ends with a DELETE answered below 400, a 404 for
its id, being closed here, or the package's idle timeout (no request in flight for `idle_s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tierwise.errors import RateLimited
from tierwise.server.limits import GatewayBusy
from tierwise.server.stream_cap import NET, ClientCap

SLOT = "tierwise.mcp_session_slot"  # key of a session's count in its holder (ClientCap's slot)


@dataclass(slots=True)
class Session:
    sid: str
    holder: dict[str, Any]  # the client and its count (ClientCap.take's scope)
    headers: list[tuple[bytes, bytes]]  # Host and Origin of the request that opened it: a DELETE for it needs them
    path: str  # where it was opened: only an answer there says it ended (elsewhere a 404 is the router's)
    hint: bytes = b""  # its opener's User-Agent and forwarded-for headers (`hint`)
    running: int = 0  # requests in flight, a GET event stream included (the package's idle clock waits for them)
    # of them POSTs (calls; a GET stream only listens): when each began, oldest first. costs10: one time for "calls
    # have run without a pause" made a client whose calls overlapped back to back look like one call past
    # `max_call_s`, and a call of a few seconds could be cut for a newcomer
    posts: list[float] = field(default_factory=list)
    last: float = field(default=0.0)  # when its last request ended (time.monotonic)


class ClientSessions:
    def __init__(self, per_client: int, idle_s: float, v4: int = 32, v6: int = 48,
                 clock: Callable[[], float] = time.monotonic, max_open: int | None = None,
                 max_call_s: float | None = None) -> None:
        self.cap = ClientCap(per_client, v4, v6, what="MCP sessions open with no call left to close",
                             setting="mcp_http.MAX_SESSIONS_PER_CLIENT", slot=SLOT)
        self.idle_s = idle_s
        self.clock = clock
        self.max_open = max_open  # sessions open (and opening) at once on the server: at it, `_fair_victim`
        self.max_call_s = max_call_s  # a session running calls for longer may be closed for a new one (None: never)
        self.open: dict[str, Session] = {}  # session id -> Session, oldest first
        # client -> when it got a session by ending another client's (`_fair_victim`), within `idle_s`: review35b,
        # one address opening, deleting its session and opening again ended a well-behaved client's sessions one
        # after another while it held one; now those count towards what it holds, for the rule only
        self.took: dict[str, list[float]] = {}
        self.warned = False  # (forwarding headers from a peer not trusted: said once, `untrusted_forwarding`)

    def admit(self, holder: dict[str, Any]) -> Session | None:
        """Count a session about to open for `holder`'s client (`holder["client"]`). At the client's cap, its least
        recently used session with no POST running is forgotten here and returned, for the caller to close; with
        none, RateLimited. At the server's (`max_open`), one of the client holding the most (`_fair_victim`); with
        none, GatewayBusy. Forgotten and counted before any await: two `initialize`s at once never pass a cap."""
        now = self.clock()
        for sid in [sid for sid, s in self.open.items() if not s.running and now - s.last >= self.idle_s]:
            self.forget(sid)  # idled out in the package too
        try:
            self.cap.take(holder)
        except RateLimited:
            mine, hint = self.cap.keys(holder), holder.get("hint", b"")
            free = [(s.running > 0, s.hint != hint, s.holder[SLOT][0][0] != mine[0], s.last, sid)
                    for sid, s in self.open.items()
                    if (not s.running or self._overrun(s, now)) and set(s.holder[SLOT][0]) & set(mine)]
            if not free:
                raise
            victim = self.forget(min(free)[4])
            self.cap.take(holder)
            return victim
        if self.max_open is None or sum(n for k, n in self.cap.open.items() if not k.endswith(NET)) <= self.max_open:
            return None
        me = holder[SLOT][0][0]
        fair = self._fair_victim(me, now)
        if fair is not None:
            if self.open[fair].holder[SLOT][0][0] != me:
                self.took.setdefault(me, []).append(now)
        else:
            self.cap.give_back(holder)
            raise GatewayBusy(f"the MCP server holds as many sessions as it may ({self.max_open}, mcp_http.MAX_SESSIONS),"
                              " each running a request or of a client holding no more than this one; retry when one "
                              "has ended")
        return self.forget(fair)

    def _fair_victim(self, mine: str, now: float) -> str | None:
        """The session to close at the server's bound for a new one of client `mine`: of the clients holding more
        sessions than `mine` now does (or `mine` itself), the one holding the most, its least recently used session
        with no request in flight; with none, its least recently used one that only listens (a GET event stream
        open, no call running: wire12, else clients listening on every session locked the others out for as long
        as they listened); with none, its one whose calls have run the longest past `max_call_s` (wire14). A call
        running for less is never cut."""
        counts = self.cap.open
        for k in [k for k, t in self.took.items() if now - t[-1] >= self.idle_s]:
            del self.took[k]  # (bounded: a client is here for one idle window after its last such session)
        took = self.took.get(mine, [])
        took[:] = [t for t in took if now - t < self.idle_s]
        floor = max(counts.get(mine, 0), len(took) + 1)  # (as if it still held each one it got so, and this one)
        best: tuple[int, int, float, str] | None = None
        for sid, s in self.open.items():
            if s.posts and not self._overrun(s, now):
                continue
            client = s.holder[SLOT][0][0]
            n = counts.get(client, 0)
            if client != mine and n <= floor:
                continue
            # (idle ones first, then listening ones, then overrun calls; of each the client holding the most)
            key = (2 if s.posts else int(s.running > 0), -n, s.posts[0] if s.posts else s.last, sid)
            if best is None or key < best:
                best = key
        return None if best is None else best[3]

    def _overrun(self, s: Session, now: float) -> bool:
        """Whether the oldest call running in `s` has run for longer than `max_call_s` (wire14)."""
        return bool(s.posts) and self.max_call_s is not None and now - s.posts[0] >= self.max_call_s

    def opened(self, sid: str, holder: dict[str, Any], headers: list[tuple[bytes, bytes]], path: str) -> None:
        """The session `holder` counted was opened by the app as `sid` (at `path`)."""
        keep = [(k, v) for k, v in headers if k in (b"host", b"origin")]
        self.open[sid] = Session(sid, holder, keep, path, holder.get("hint", b""), last=self.clock())

    def forget(self, sid: str) -> Session | None:
        s = self.open.pop(sid, None)
        if s is not None:
            self.cap.give_back(s.holder)
        return s

    def start(self, sid: str, post: bool) -> tuple[Session, float] | None:
        """A request of session `sid` begins: the session and when (for `end`), None for a session not open."""
        s = self.open.get(sid)
        if s is None:
            return None
        s.running += 1
        began = self.clock()
        if post:
            s.posts.append(began)
        return s, began

    def end(self, sid: str, s: Session, began: float, post: bool, method: str, path: str, status: int) -> None:
        """A request of session `sid` ended with `status`. The session has ended when that was a 404 or a DELETE's
        2xx, on the path it was opened at: a 404 off it (the router's) or a DELETE to `/mcp/` (a 307 redirect) said
        so too (review31e), its count was given back while the session lived on, and one client again opened every
        session of the server."""
        s.running -= 1
        if post:
            s.posts.remove(began)  # (calls that began at the same tick are alike)
        s.last = self.clock()
        if path == s.path and (status == 404 or (method == "DELETE" and 200 <= status < 300)):
            self.forget(sid)


_HINTS = (b"user-agent", b"x-forwarded-for", b"forwarded", b"x-real-ip")


def hint(headers: list[tuple[bytes, bytes]]) -> bytes:
    """Who opens a session, in the client's own words (`Session.hint`)."""
    return b"\n".join(b"%s:%s" % (k, v[:256]) for k, v in headers if k in _HINTS)


def untrusted_forwarding(headers: list[tuple[bytes, bytes]], client: Any) -> str | None:
    """The forwarding header of a request whose client is its connection's peer (the gateway rewrites the client,
    port 0, only behind a proxy in `trusted_proxies`): a reverse proxy in front that is not trusted."""
    if client is not None and client[1] == 0:
        return None
    return next((k.decode() for k, _ in headers if k in _HINTS[1:]), None)
