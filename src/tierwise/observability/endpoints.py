"""HTTP endpoints of observability: `/metrics`, `/dashboard` and the dashboard's JSON and live stream.

Access (server/roles.py): with no gateway keys configured everything here is open (like the rest of
the gateway). With keys, an admin key reads everything, a read-only viewer key everything but the
conversation, and a gateway key only its own requests and traces (the gateway-wide totals, topology and
/metrics are refused to it), or nothing with `observability.dashboard.client_keys: none`. The dashboard page
itself holds no data: it reads the key from the URL fragment (never sent to a server), keeps it
in the tab's sessionStorage and sends it as a header to the JSON and stream endpoints — no
cookie, so another site cannot make the browser send it (no CSRF), and the endpoints refuse
requests a browser marks as cross-site.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import orjson

from tierwise.errors import NotFound, PermissionDenied, RateLimited, TierwiseError
from tierwise.secret_scrub import scrub_value
from tierwise.server.asgi_scope import request_headers
from tierwise.server.roles import Reader, Roles
from tierwise.wire import openai_chat

Handler = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

STATIC = "static"
NO_STORE = (b"cache-control", b"no-store")
PAGE_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
TYPES = {".js": b"text/javascript; charset=utf-8", ".css": b"text/css; charset=utf-8",
         ".html": b"text/html; charset=utf-8", ".txt": b"text/plain; charset=utf-8",
         ".md": b"text/plain; charset=utf-8"}
STREAM_TICK_S = 0.2
MAX_STREAMS = 32  # open live streams per process: each is a loop and a socket
# A gateway key (a client) may hold a few, and all clients together leave some for viewer keys; gateway and viewer
# keys together leave some for admin keys: any client's key opens the stream (its own requests), and a viewer key is
# read-only, so neither may take every slot (a viewer key had no cap: 32 of its streams refused every admin's live
# view, session 34, obs5).
MAX_STREAMS_PER_KEY = 4
MAX_CLIENT_STREAMS = 16
MAX_SHARED_STREAMS = 24  # gateway and viewer keys together: at least 8 are an admin's
# A stream ends after this long (the page reconnects at once): bounded like every other request,
# and a stopping gateway never waits longer than this for an open dashboard.
STREAM_LIFETIME_S = 30.0


# What a ledger record may hold of the conversation itself (`ledger.store_text`, a shadow pair's answers, an
# `eval` record's `local_answer` and `frontier_answer`: those two were shown to viewer keys before session 30,
# under an id any viewer can derive, `<request id>-eval`; and `privacy.audit.store_payload`'s `payload`, the
# outgoing body with only PII replaced, also shown before session 30); any `*_answer` / `*_prompt` key too.
CONTENT_KEYS = frozenset({"prompt", "answer", "text", "content", "messages", "payload"})
CONTENT_SUFFIXES = ("_answer", "_answers", "_prompt", "_prompts")
# Any other key with one of these words, in any case or spelling (`Local_Answer`, `answer_text`, `systemPrompt`, a
# tool call's `arguments`): `extra` is also the library's to fill (`Ledger.annotate`), with names of the writer's
# choosing (review30a: those were shown). Only its text is withheld there: numbers and flags (`output_tokens`,
# `text_chars`) hold none of the conversation.
CONTENT_WORDS = frozenset({"prompt", "prompts", "answer", "answers", "text", "content", "contents", "messages",
                           "payload", "output", "outputs", "completion", "completions", "arguments", "args"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")  # the words of snake_case, kebab-case, camelCase, UPPER


@functools.lru_cache(maxsize=4096)
def _content_words(k: str) -> bool:
    return any(w.lower() in CONTENT_WORDS for w in _WORD.findall(k[:200]))


def _content(k: Any, x: Any) -> bool:
    if x is None or x == "":
        return False
    if k in CONTENT_KEYS or (isinstance(k, str) and k.endswith(CONTENT_SUFFIXES)):
        return True
    return isinstance(k, str) and not isinstance(x, (bool, int, float)) and _content_words(k)


WITHHELD = "[withheld from viewer keys]"


def without_content(v: Any) -> Any:
    """A copy of a trace with the conversation's text replaced, at any depth: the read-only role sees what
    happened (routes, models, costs, timings, verdicts), not what was said.

    Beyond the text fields, verifiers' words quote the answer (a schema violation names the value, a judge
    explains its grade, an arithmetic check shows the wrong equation): a verdict's reason and the strings of
    its detail are withheld, and so is each verdict reason where a decision repeats it ("failed verification
    (...)"); so is the upstream's own text in a failed call's reason ("provider 'x' answered HTTP 400: ..."),
    wherever it is repeated (a fallback's decision, the ledger's error message); a `reason` anywhere else than on
    a call or a decision (a client's feedback, a judge's evaluation) is withheld too."""
    quoted: set[str] = set()
    _verdict_reasons(v, quoted)
    return _withhold(v, sorted(quoted, key=len, reverse=True), True)


# A failed call's reason quoting its upstream's error text (providers/error_classes.py, the codecs' stream errors):
# that text is the upstream's to write, and servers quote the request in it (a FastAPI-based server's validation
# error echoes the `input` it refused: the messages).
_UPSTREAM_TEXT = re.compile(r"""(?:provider (?:'[^']*'|"[^"]*") answered HTTP \d+|upstream error(?: mid-stream)?): (.+)""",
                            re.DOTALL)  # (a provider's name is its repr: in double quotes when it holds a ')


def _verdict_reasons(v: Any, out: set[str], top: bool = True) -> None:
    if isinstance(v, dict):
        kind = v.get("kind")
        if kind == "verdict" and isinstance(v.get("reason"), str) and v["reason"]:
            out.add(v["reason"])
        elif kind == "call" and isinstance(v.get("reason"), str) and (m := _UPSTREAM_TEXT.fullmatch(v["reason"])):
            out.add(m.group(1))
        elif kind is None and not top and isinstance(v.get("reason"), str) and len(v["reason"]) >= 4:
            # A reason withheld where it stands (an approver's, a judge's) is withheld where a decision repeats
            # it: "approved by admin:ops (<the approver's words on the request>)" (review30a: shown).
            out.add(v["reason"])
        for x in v.values():
            _verdict_reasons(x, out, False)
    elif isinstance(v, list):
        for x in v:
            _verdict_reasons(x, out, False)


def _withhold(v: Any, quoted: list[str], reasons_kept: bool) -> Any:
    if isinstance(v, str):
        for q in quoted:
            if q in v:
                v = v.replace(q, WITHHELD)
        return v
    if isinstance(v, list):
        return [_withhold(x, quoted, reasons_kept) for x in v]
    if not isinstance(v, dict):
        return v
    kind = v.get("kind")
    if kind == "verdict":
        return {k: (WITHHELD if k == "reason" and x else _all_strings(x) if k == "detail" else x) for k, x in v.items()}
    keep = reasons_kept or kind in ("call", "decision")
    return {k: (WITHHELD if _content(k, x) or (k == "reason" and not keep and x not in (None, ""))
                else _unquoted(_withhold(x, quoted, False)) if k == "error_message" and isinstance(x, str)
                else _withhold(x, quoted, False)) for k, x in v.items()}


# A failed request's error message quotes what it refused, as Python's repr or in backquotes: a JSON Schema
# violation the value (an ensemble agent's output that does not match its `output_schema`: "'<the answer>' is not
# of type 'integer'", review30a: shown to viewer keys), a client's names. Each quoted stretch is withheld, one left
# open (cut off at its length bound) to the end.
_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*(?:'|\Z)|"(?:[^"\\]|\\.)*(?:"|\Z)|`[^`]*(?:`|\Z)""", re.DOTALL)


def _unquoted(text: str) -> str:
    return _QUOTED.sub(WITHHELD, text)


def _all_strings(v: Any) -> Any:
    """`v` with every string withheld (numbers, booleans and the shape kept)."""
    if isinstance(v, str):
        return WITHHELD if v else v
    if isinstance(v, dict):
        return {k: _all_strings(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_all_strings(x) for x in v]
    return v


def _error(err: TierwiseError) -> bytes:
    """In the OpenAI schema, as every other gateway error without an API of its own (with `param`, `code`)."""
    return openai_chat.encode_error(err)


class Endpoints:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.gw = app.gw
        self.obs = app.gw.observer
        dcfg = self.gw.cfg.observability.dashboard
        self.roles: Roles = app.roles
        self.per_tick = max(1, int(dcfg.stream_per_second * STREAM_TICK_S))
        self.streams = 0
        self.shared_streams = 0  # of them, those of gateway and viewer keys
        self.client_streams: dict[str, int] = {}  # a client key's name -> its open live streams
        self.stream_lifetime = STREAM_LIFETIME_S
        self.static: dict[str, bytes] = {}
        self.topology: Any = None
        # Workers announce themselves on the dispatch section's Redis: with one, the panel needs no
        # second setting (docs/observability.md, "Worker presence").
        dispatch = getattr(self.gw.cfg, "dispatch", None)
        presence_url = dcfg.presence_redis_url or (dispatch.redis_url if dispatch is not None else None)
        if self.obs.live is not None or (self.obs.metrics is not None and presence_url):
            from tierwise.observability.topology import Topology

            self.topology = Topology(self.gw, presence_url, refresh_s=dcfg.presence_refresh)

    async def close(self) -> None:
        if self.topology is not None:
            await self.topology.close()

    def routes(self) -> dict[tuple[str, str], Handler]:
        r: dict[tuple[str, str], Handler] = {}
        if self.obs.metrics is not None:
            r[("GET", "/metrics")] = self.metrics
        if self.obs.live is not None:
            r[("GET", "/dashboard")] = self.page
            r[("GET", "/dashboard/api/role")] = self.role
            r[("GET", "/dashboard/api/summary")] = self.summary
            r[("GET", "/dashboard/api/topology")] = self.topology_json
            r[("GET", "/dashboard/api/recent")] = self.recent
            r[("GET", "/dashboard/api/trace")] = self.trace
            r[("GET", "/dashboard/api/stream")] = self.stream
            for name in self._static_names():
                r[("GET", f"/dashboard/static/{name}")] = self.static_file
        return r

    # ------------------------------------------------------------------ access

    def _allowed(self, scope: dict[str, Any], gateway_wide: str | None = None) -> Reader:
        """Who asks (server/roles.py); `gateway_wide` names data that covers every client's requests."""
        headers = request_headers(scope)
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            raise PermissionDenied("observability endpoints answer same-origin requests only")
        reader = self.roles.reader(headers)
        if gateway_wide is not None:
            reader.need_all(gateway_wide)
        return reader

    async def _guarded(self, scope: dict[str, Any], send: Any, gateway_wide: str | None = None) -> Reader | None:
        """The caller's role (see `_allowed`), or None once an error was sent."""
        try:
            return self._allowed(scope, gateway_wide)
        except TierwiseError as e:
            await self.app.send_json(send, e.status, _error(e), [NO_STORE])
            return None

    # ------------------------------------------------------------------ /metrics

    async def metrics(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not await self._guarded(scope, send, "/metrics"):
            return
        m = self.obs.metrics
        m.flush()
        m.refresh_breakers(self.gw.deployments)
        m.refresh_ledger(self.gw.ledger)
        await m.refresh_budgets(self.gw.spend)
        await m.refresh_cache(self.gw.cache)
        if self.topology is not None:
            await self.topology.refresh_workers(m)
        body = await asyncio.to_thread(m.exposition) if m.mp else m.exposition()
        from tierwise.observability.metrics import CONTENT_TYPE

        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})

    # ------------------------------------------------------------------ dashboard page and assets

    @staticmethod
    def _static_names() -> list[str]:
        root = resources.files("tierwise.observability").joinpath(STATIC)
        return sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))

    def _asset(self, name: str) -> bytes:
        b = self.static.get(name)
        if b is None:
            b = self.static[name] = resources.files("tierwise.observability").joinpath(STATIC, name).read_bytes()
        return b

    async def _send_asset(self, send: Any, name: str) -> None:
        body = self._asset(name)
        ctype = TYPES.get(os.path.splitext(name)[1], b"application/octet-stream")
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", ctype), (b"content-length", str(len(body)).encode()), *PAGE_HEADERS]})
        await send({"type": "http.response.body", "body": body})

    async def page(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # The page holds no data (it asks the API with the key), so it is served to anyone.
        await self._send_asset(send, "dashboard.html")

    async def static_file(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self._send_asset(send, scope["path"].rsplit("/", 1)[1])

    # ------------------------------------------------------------------ JSON

    async def _json(self, scope: dict[str, Any], send: Any, data: Any, status: int = 200) -> None:
        await self.app.send_json(send, status, orjson.dumps(data), [NO_STORE])

    async def role(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """What the caller's key may read (the page leaves out the gateway-wide panels for a gateway key)."""
        reader = await self._guarded(scope, send)
        if reader is not None:
            await self._json(scope, send, {"role": reader.role, "gateway_wide": reader.sees_all,
                                           "content": reader.sees_content})

    async def summary(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not await self._guarded(scope, send, "the gateway's totals"):
            return
        live = self.obs.live
        q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            seconds = min(max(int(q.get("seconds", ["300"])[0]), 10), 900)
        except ValueError:
            seconds = 300
        if self.obs.metrics is not None:
            await self.obs.metrics.refresh_budgets(self.gw.spend)
        await self._json(scope, send, {"totals": live.totals, "series": live.series(seconds),
                                       "extras": self.topology.extras(self.obs.metrics)})

    async def topology_json(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not await self._guarded(scope, send, "the topology"):
            return
        await self._json(scope, send, await self.topology.snapshot(self.obs.live))

    async def recent(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        reader = await self._guarded(scope, send)
        if reader is None:
            return
        live = self.obs.live
        if reader.sees_all:
            _, rows, skipped = live.since(max(0, live.seq - 50), 50)
        else:  # the newest 50 of its own among those kept
            rows, skipped = live.newest(50, reader.key.name if reader.key is not None else None), 0
        await self._json(scope, send, {"rows": rows, "skipped": skipped})

    async def trace(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """One request's full trace: from memory when recent, else from the ledger (what `tierwise trace` shows).
        A viewer key gets it without the content the ledger may hold (prompts, answers, shadow answers)."""
        reader = await self._guarded(scope, send)
        if reader is None:
            return
        q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        rid = (q.get("id") or [""])[0][:100]
        visible = None if reader.sees_all else reader.owns
        data = self.obs.live.trace(rid, visible) if rid else None
        if data is not None and self.gw.privacy is not None:  # as the ledger keeps it: protected values replaced
            data = self.gw.privacy.clean_value(data)
        if data is None and rid and self.gw.ledger is not None:
            rec = await asyncio.to_thread(self.gw.ledger.get, rid)
            if rec is not None and reader.owns((getattr(rec, "extra", None) or {}).get("key")):
                data = rec.to_dict() if hasattr(rec, "to_dict") else dict(vars(rec))
        if data is None:  # another key's request reads as an unknown one: ids are guessable
            await self.app.send_json(send, 404, _error(NotFound("no such request")), [NO_STORE])
            return
        await self._json(scope, send, scrub_value(data if reader.sees_content else without_content(data)))

    # ------------------------------------------------------------------ live stream (SSE)

    async def stream(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        reader = await self._guarded(scope, send)
        if reader is None:
            return
        owner = reader.key.name if reader.key is not None else None
        refused = None
        if self.streams >= MAX_STREAMS:
            refused = "too many live streams open"
        elif reader.role in ("viewer", "client") and self.shared_streams >= MAX_SHARED_STREAMS:
            refused = f"too many live streams open for gateway and viewer keys (at most {MAX_SHARED_STREAMS})"
        elif owner is not None and (self.client_streams.get(owner, 0) >= MAX_STREAMS_PER_KEY
                                    or sum(self.client_streams.values()) >= MAX_CLIENT_STREAMS):
            refused = f"too many live streams open for gateway keys (at most {MAX_STREAMS_PER_KEY} per key)"
        if refused is not None:
            await self.app.send_json(send, 429, _error(RateLimited(refused)), [NO_STORE])
            return
        shared = reader.role in ("viewer", "client")
        self.streams += 1
        self.shared_streams += shared
        if owner is not None:
            self.client_streams[owner] = self.client_streams.get(owner, 0) + 1
        try:
            await self._stream(send, receive, None if reader.sees_all else reader.owns)
        finally:
            self.streams -= 1
            self.shared_streams -= shared
            if owner is not None:
                left = self.client_streams[owner] - 1
                if left:
                    self.client_streams[owner] = left
                else:
                    del self.client_streams[owner]

    async def _stream(self, send: Any, receive: Any, visible: Callable[[str | None], bool] | None) -> None:
        live = self.obs.live
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-store"), (b"x-accel-buffering", b"no")]})
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        seq = max(0, live.seq - 20)
        ends = time.monotonic() + self.stream_lifetime
        try:
            await send({"type": "http.response.body", "body": b": live\n\n", "more_body": True})
            while not gone.is_set() and time.monotonic() < ends:
                seq, rows, skipped = live.since(seq, self.per_tick, visible)
                if rows:
                    body = b"event: requests\ndata: " + orjson.dumps({"rows": rows, "skipped": skipped}) + b"\n\n"
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                try:
                    await asyncio.wait_for(gone.wait(), STREAM_TICK_S)
                except TimeoutError:
                    pass
        except OSError:
            pass
        finally:
            watcher.cancel()
        try:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # the client already left
            pass
