"""THE privacy seam: every call about to leave for a `locality: remote` provider passes here.

How it holds for every policy without any policy knowing: `Gateway` builds one `Boundary` from the `privacy:`
config and hangs it on each remote `Deployment` (`deployment.privacy`). `Deployment.complete/stream` -- the
one place every policy's upstream call goes through (rules, fallback, cascade tiers and their `with_draft`
escalations, advisor consults, specialist summaries, draft checks, judge calls, shadow runs, ensemble agents)
-- hands a remote call to `Boundary.complete/stream` first. Local deployments have no boundary: nothing leaves
the machine. Without a `privacy:` section no deployment has one: the cost is one attribute test per model
call.

Per request there is one `Guard` (`ctx.privacy`, made on the first remote call of a Context, or by
`Gateway.context`). For each remote call it:

1. scans the canonical request (every text place; findings memoised per text, so the cascade's second tier
   or the judge re-reading the same messages costs a dict lookup); a detector error refuses the call;
2. applies the route's class policies (`tierwise.privacy.policy.decide`):
   - `block`: raises `PrivacyBlocked` (400 in the client's API schema, naming the class);
   - `local_only` / outside the class's `regions`: raises `PrivacyRefused`, an upstream
     error that fallback, cascade, specialist and learned routes treat as "this target is
     not allowed": they move on to the next (local) target, and fail clearly when none is
     left; advisor consults and shadow runs simply do not happen. The refusal is a trace step;
   - `redact`: pseudonymises with the conversation's mapping (`redact_canonical`) and
     restores the answer: whole bodies, streams (`stream_restore`, placeholders split
     across chunks), tool-call arguments, thinking;
3. checks the serialized outgoing bytes, as a last line of defence, for any detected value
   that should not be there (JSON-escaped, on word boundaries); one found refuses the call;
4. records the crossing as a `decision` step named `privacy` whose `detail.privacy` holds
   destination, action, classes and entity counts, what was redacted or kept, and the
   SHA-256 of the outgoing body -- never a value. The ledger's `privacy` column and
   `tierwise audit` are built from these steps (`tierwise.privacy.audit`).

Observability: `ctx.privacy.protected` is True once a scan of this request found a value of a protected class
(any class some policy does not simply allow); `Guard.scan_request(req)` scans on demand (cached) for a caller
that needs the flag before any remote call.

Conversation mappings: a request naming a conversation (header `x-tierwise-conversation`, or
`metadata.conversation_id`) loads its Pseudonymizer from an encrypted `MappingStore` (keyed by an HMAC of the
client's key and the conversation id) and saves it after each redaction, so `<PERSON_1>` stays the same person
across turns. Without a name, the mapping lives for the request only.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tierwise.canonical import (
    Request,
    Response,
    StreamChunk,
)
from tierwise.errors import ConfigError, InvalidRequest, UpstreamError
from tierwise.privacy.archives import request_budget as archive_budget
from tierwise.privacy.findings_cache import FindingsCache, prefill
from tierwise.privacy.llm_detector import LlmDetectionFailed, LlmDetector
from tierwise.privacy.mapping_store import MappingStore
from tierwise.privacy.origin import kept_from, origin_of, root_of
from tierwise.privacy.packed import request_budget
from tierwise.privacy.policy import PolicyTable, Verdict, decide, stricter
from tierwise.privacy.policy_config import PrivacyConfig
from tierwise.privacy.redact import Pseudonymizer, RedactMemo
from tierwise.privacy.redact_canonical import _Redactor, redact_request, restore_response
from tierwise.privacy.request_scan import iter_texts, read_pdfs
from tierwise.privacy.request_vocabulary import DeclaredNames, ValueSpread, tool_name_slots, values_in_body
from tierwise.privacy.split_values import DETECTOR as SPLIT
from tierwise.privacy.split_values import merge, split_findings
from tierwise.privacy.stream_restore import StreamRestorer
from tierwise.privacy.text_cleaning import Cleaning, DetectionFailed, detector_for
from tierwise.server.key_scopes import client_credential
from tierwise.trace import Step

if TYPE_CHECKING:
    from tierwise.policies.base import Context
    from tierwise.providers.deployment import Deployment

log = logging.getLogger("tierwise.privacy")

MAX_MEMO_TEXTS = 4096  # distinct texts whose findings one request keeps (bounded: a request is bounded too)
JUNCTION_WINDOWS = 4096  # junction windows one client's part of the junction cache keeps (split_values)
# A request with this much text not yet scanned is scanned in a worker thread, so the event loop's
# other requests do not wait for it. With NER (~0.1 s per 2,000 tokens) that is worth it for any
# sizeable request; the structured detectors alone take ~1 ms per 10,000 characters, less than
# a hand-off to a thread costs on a busy machine, so they stay inline up to ~10 ms of work.
OFFLOAD_CHARS = 2000
OFFLOAD_CHARS_NO_NER = 100_000


class PrivacyRefused(UpstreamError):
    """This remote call may not happen (class local_only, region, detector failure, leak check).

    An UpstreamError with its own class, so routes move on to their next target and the
    deployment's breaker does not count it (providers/error_classes.py)."""

    def __init__(self, message: str) -> None:
        # A 400, final, as a `block` is: Claude Code shows a 403 as "Failed to authenticate" (newuser36).
        super().__init__(message, status=400, retryable=False, kind="invalid_request_error",
                         error_class="privacy_refused")


class PrivacyBlocked(InvalidRequest):
    """The request holds a class whose policy is `block`: it fails, in the client's API schema."""


# ---------------------------------------------------------------------------- walking a request


def request_texts(req: Request) -> Iterator[str]:
    """Every string of `req` that would travel upstream (see `request_scan.iter_texts`)."""
    for _, t in iter_texts(req):
        yield t


def conversation_texts(req: Request) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The texts of the system prompt and the messages in reading order (text, tool-call
    arguments' values, tool results), where a value split across parts reads as one, and each one's role."""
    texts, roles = [], []
    for loc, t in iter_texts(req):
        if ".raw" in loc and _document_text(loc):
            pass  # review35f: a document's text (`jane.doe` + a text document `@example.com...`) reads on as prose
        elif loc.endswith(("#key", ".name")) or ".raw" in loc or ".extra" in loc:
            # JSON keys, tool calls' names and the fields of unmodelled blocks are structure, not prose: joined
            # with their neighbours (`type` `document` `source` `type` `base64` `media_type` ...; `env` `Read`
            # `/tmp/p2/`) they made a long token the secret detector took for a key, and every document was
            # blocked, every path with a digit in a coding agent's call redacted. (Each is still scanned alone.)
            continue
        if loc.startswith("system"):
            texts.append(t)
            roles.append("system")
        elif loc.startswith("messages["):
            texts.append(t)
            roles.append(req.messages[int(loc[9:loc.index("]")])].role)
    return tuple(texts), tuple(roles)


def _document_text(loc: str) -> bool:
    """Is `loc`, inside an unmodelled block, a document's or file's text (`source.data` of a text document, the text
    of a base64 `text/plain` one or of a PDF, a content block's `text`, a `file_data`), not one of its structure fields?
    (An image's metadata fields, `#media`, stay apart: joined, two fields made one "address".)"""
    field, _, tag = loc.rpartition(".")[2].partition("#")
    return field in ("data", "text", "file_data") and tag in ("", "pdf")


# ---------------------------------------------------------------------------- the boundary


def install(gateway: Any) -> Boundary:
    """Build the boundary of `gateway`'s config, put it in front of its remote deployments, and
    let its ledger clean records (the gateway's one call into this package)."""
    import functools

    from tierwise.privacy.audit import seal_record
    from tierwise.route_map import leads_to

    cfg = gateway.cfg
    # A model (or a route inside a route) named directly: the rules of the routes leading to it hold for it too.
    reached_by: dict[str, list[str]] = {}
    for r in cfg.privacy.routes:
        seen, todo = {r}, leads_to(cfg, r)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                reached_by.setdefault(name, []).append(r)
                todo += leads_to(cfg, name)
    b = Boundary(cfg.privacy, base_dir=cfg.base_dir, routes=set(cfg.routes) | set(gateway.deployments),
                 reached_by=reached_by)
    b.attach(gateway.deployments)
    b.own_names = frozenset(cfg.routes) | frozenset(gateway.deployments) | frozenset(
        d.cfg.model for d in gateway.deployments.values())
    if gateway.ledger is not None:
        gateway.ledger.seal = functools.partial(seal_record, b)
    return b


def mapping_key(cfg: PrivacyConfig) -> bytes | None:
    """The mapping store's AES-256 key from `mapping.key_env` (None: a random key per process). A config error
    when the variable is unset or holds something else: `serve` asks this before it loads the NER model, so the
    error comes at once rather than after the seconds that takes."""
    m = cfg.mapping
    if not m.key_env:
        return None
    hexkey = os.environ.get(m.key_env, "")
    try:
        key: bytes | None = bytes.fromhex(hexkey)
    except ValueError:
        key = None
    if key is None or len(key) != 32:
        state = "is not set" if not hexkey else "holds something else"
        raise ConfigError(f"environment variable {m.key_env} {state}: it must hold the mapping store's "
                          f"AES-256 key as 64 hex digits (make one: export {m.key_env}=$(python3 -c 'import "
                          "secrets; print(secrets.token_hex(32))'), and keep it: a new key cannot read what "
                          "the old one stored), or leave key_env out for a random key per process",
                          path="privacy.mapping.key_env")
    return key

class Boundary(Cleaning):
    """One per gateway: the privacy config made usable (policy table, detector, mapping store)."""

    def __init__(self, cfg: PrivacyConfig, *, base_dir: str = ".", routes: set[str] | None = None,
                 detector: Callable[[str], list[Any]] | None = None,
                 reached_by: dict[str, list[str]] | None = None) -> None:
        self.cfg = cfg
        for r in cfg.routes:
            if routes is not None and r not in routes:
                raise ConfigError(f"unknown route {r!r} (known: {', '.join(sorted(routes)) or 'none'})",
                                  path=f"privacy.routes.{r}")
        self.table = PolicyTable(cfg, reached_by)
        self.scan: Callable[[str], list[Any]] = detector or detector_for(cfg)
        # Junctions between texts (values split across parts) are scanned without NER.
        self.scan_junction: Callable[[str], list[Any]] = detector or detector_for(cfg, ner=False)
        self.junction_cache = FindingsCache(max_entries=JUNCTION_WINDOWS)  # windows' findings (split_values), per client
        self.findings_cache = FindingsCache()  # texts' findings across a client's requests
        ner = getattr(self.scan, "ner_active", True)  # a detector given from outside: assume slow
        self.offload_chars = OFFLOAD_CHARS if ner else OFFLOAD_CHARS_NO_NER
        self.llm: LlmDetector | None = None  # the local model as a detector (set by `attach`)
        self.protected = self.table.protected_entities()
        m = cfg.mapping
        key = mapping_key(cfg)
        path = None
        if m.path:
            path = m.path if os.path.isabs(m.path) else os.path.join(base_dir, m.path)
        self.store = MappingStore(key, ttl_s=m.ttl_s, max_entries=m.max_entries, path=path)
        self._conv_secret = hashlib.sha256(b"tierwise-conversation" + (key or os.urandom(32))).digest()

    def attach(self, deployments: dict[str, Deployment]) -> None:
        """Put the boundary in front of every remote deployment (and find the local detector model)."""
        for d in deployments.values():
            if d.locality == "remote":
                d.privacy = self
        lc = self.cfg.llm_detector
        if lc.enabled:
            dep = deployments.get(lc.model or "")
            if dep is None or dep.locality != "local":
                raise ConfigError(f"{lc.model!r} is not a deployment with locality: local (the detector model must "
                                  "not be remote)", path="privacy.llm_detector.model")
            wanted = frozenset().union(*self.table.class_entities.values())
            self.llm = LlmDetector(lc, dep, wanted)

    def close(self) -> None:
        self.store.close()

    def guard(self, ctx: Context) -> Guard:
        g = ctx.privacy
        if g is None:
            parent = _REQUEST_GUARD.get()
            g = Guard(self, ctx.trace.route, parent)
            ctx.privacy = g
            if parent is None and ctx.trace.request_id.startswith("req_"):
                # A client's request: contexts made later in its task (ensemble agents, shadow
                # runs) inherit its route's policy and its mapping.
                _REQUEST_GUARD.set(g)
        return g  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ the two seams

    async def _prescan(self, g: Guard, req: Request, ctx: Context) -> None:
        """Scan a large request in a worker thread, so detection (milliseconds; NER, much more)
        does not hold up the event loop's other requests; `outgoing` then finds it memoised."""
        if (origin := origin_of(g)) is not None and origin is not req:  # checked too (privacy/origin.py)
            await self._prescan(g, origin, ctx)
        g.bind(req)
        archive_budget()  # privacy15: all the request's archives inflate 16 MB at most (privacy/archives.py)
        await read_pdfs(req)  # round 13: a PDF's text comes from a child process (pdf_text): off the event loop
        texts = list(request_texts(req))
        total, todo = sum(map(len, texts)), sum(len(t) for t in texts if t not in g._memo)
        if total > self.cfg.max_request_chars:  # many texts each under max_chars: the scan's cost is their sum
            raise PrivacyRefused(f"the request carries {total} characters of text, more than the privacy detectors "
                                 f"scan for a remote model ({self.cfg.max_request_chars}, privacy.max_request_chars)")
        request_budget(total)  # gzip inflated in all the request's texts: at most its characters (packed.py; review33d)
        if todo >= self.offload_chars:
            try:
                await asyncio.to_thread(g.scan_request, req)
            except DetectionFailed:
                pass  # `outgoing` scans again, fails again, and refuses the call
        if self.llm is not None:
            await self._ask_llm(g, req, ctx)

    async def _ask_llm(self, g: Guard, req: Request, ctx: Context) -> None:
        """Add the local model's findings to the memo of each text (once per text and guard); if
        it fails, mark the texts so that `outgoing` refuses the call (fails closed)."""
        from tierwise.privacy.detect import resolve_overlaps

        assert self.llm is not None
        texts = [t for t in dict.fromkeys(request_texts(req)) if t and t not in g._llm_done]
        if not texts:
            return
        try:
            extra = await self.llm.find(texts, ctx)
        except LlmDetectionFailed:
            g._llm_failed.update(texts)
            return
        for t in texts:
            g._llm_done.add(t)
            if t in extra:
                try:
                    base = g.findings(t)
                except DetectionFailed:
                    continue  # `outgoing` refuses
                g._memo[t] = resolve_overlaps([*base, *extra[t]])

    async def vet(self, dep: Deployment, req: Request, ctx: Context
                  ) -> tuple[Request, Pseudonymizer | None, Callable[[bytes], None]]:
        """The seam for a body that leaves for remote `dep` outside `complete`/`stream` (the
        count_tokens and embeddings endpoints): the same scan, policy, redaction, trace step and
        leak check (`check` on the bytes about to leave). Raises PrivacyBlocked / PrivacyRefused."""
        g = self.guard(ctx)
        await self._prescan(g, req, ctx)
        return g.outgoing(dep, req, ctx)

    async def complete(self, dep: Deployment, req: Request, ctx: Context) -> Response:
        g = self.guard(ctx)
        await self._prescan(g, req, ctx)
        out, p, check = g.outgoing(dep, req, ctx)
        resp = await dep.complete(out, ctx, check)
        return restore_response(resp, p) if p is not None else resp

    async def stream(self, dep: Deployment, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        g = self.guard(ctx)
        await self._prescan(g, req, ctx)
        out, p, check = g.outgoing(dep, req, ctx)
        it = await dep.stream(out, ctx, check)
        if p is None:
            return it
        return _restored(it, StreamRestorer(p))

    # stored text: `clean_text` / `clean_value` (text_cleaning.Cleaning)


async def _restored(it: AsyncIterator[StreamChunk], r: StreamRestorer) -> AsyncIterator[StreamChunk]:
    try:
        async for chunk in it:
            out = r.restore_chunk(chunk)
            if out.events:
                yield out
        tail = r.flush_all()
        if tail:
            yield StreamChunk(events=tail)
    finally:
        await it.aclose()  # type: ignore[attr-defined]


_REQUEST_GUARD: contextvars.ContextVar[Guard | None] = contextvars.ContextVar("tierwise_privacy_guard",
                                                                               default=None)


class Guard:
    """One request's privacy state: memoised findings, the mapping, what crossed.

    A guard made inside a client request's task for another Context (an ensemble agent's call,
    a shadow run) has that request's guard as `parent`: it applies the stricter of both routes'
    policies and shares the parent's mapping (placeholders stay consistent across the request)."""

    __slots__ = ("b", "route", "policies", "_memo", "_p", "_conv", "protected", "_surrogates", "parent", "origin",
                 "_redacted", "_llm_done", "_llm_failed", "_split", "_split_done", "_names", "_salt")

    def __init__(self, boundary: Boundary, route: str, parent: Guard | None = None, reads: Guard | None = None) -> None:
        self.b, self.route, self.parent = boundary, route, parent
        self.origin: Request | None = None  # the client's request (Gateway.context): privacy/origin.py
        self.policies = boundary.table.for_route(route)
        if parent is not None and parent.route != route:
            self.policies = stricter(self.policies, parent.policies)
        self._memo: dict[str, list[Any]] = {}
        # (entities, the request's values) -> (text -> redacted text, their ValueSpread)
        self._redacted: dict[tuple[frozenset[str], frozenset[str]], tuple[dict[str, str], ValueSpread]] = {}
        self._p: Pseudonymizer | None = None
        self._conv: str | None = None
        self.protected = False  # a protected class's value was seen in this request (observability)
        self._surrogates = frozenset(e for pol in self.policies.values() for e in pol.surrogates)
        self._llm_done: set[str] = set()  # texts the local model detector has seen
        self._llm_failed: set[str] = set()  # texts it failed on: treated as a detector failure
        self._split: dict[str, list[Any]] = {}  # text -> pieces of values split across texts
        self._split_done: set[tuple[str, ...]] = set()  # conversations whose junctions were scanned
        self._names = DeclaredNames()  # the requests' tool and schema names, and where they are exempt
        self._salt: bytes | None = None  # the findings cache's key for this request's client (set by `bind`)
        if reads is not None:  # a nested route's guard (route_rule.py) reads the same texts: findings found once
            self._memo, self._split, self._split_done, self._names, self._salt, self._llm_done, self._llm_failed = (
                reads._memo, reads._split, reads._split_done, reads._names, reads._salt, reads._llm_done,
                reads._llm_failed)

    def __repr__(self) -> str:
        return f"Guard(route={self.route!r}, protected={self.protected})"

    def findings(self, text: str) -> list[Any]:
        if self._llm_failed and text in self._llm_failed:
            raise DetectionFailed("LlmDetectionFailed")
        got = self._memo.get(text)
        if got is None:
            key = FindingsCache.key(self._salt, text) if self._salt is not None else None
            raw = self.b.findings_cache.get(key) if key is not None else None
            if raw is None:
                raw = self.b.scan(text)
                if key is not None:
                    self.b.findings_cache.put(key, raw)
            got = self._names.drop(text, raw)
            pieces = self._split.get(text)
            if pieces:
                got = merge(got, pieces)
            if len(self._memo) < MAX_MEMO_TEXTS:
                self._memo[text] = got
        return got

    def bind(self, req: Request) -> None:
        """Before any text of `req` is scanned: its client (whose findings cache it reads) and the names it
        defines for its tools (a name detector's finding of a tool's own name is dropped, see request_vocabulary)."""
        if self._salt is None:
            client = client_credential(req.headers) or ""
            self._salt = hmac.new(self.b._conv_secret, b"findings" + client.encode(), hashlib.sha256).digest()
        self._names.add(req)

    def scan_request(self, req: Request) -> Counter[str]:
        """Entity -> count over every text of `req` (raises DetectionFailed)."""
        self.bind(req)
        counts: Counter[str] = Counter()
        protected = self.b.protected
        prefill(self.b.findings_cache, self._salt, request_texts(req), self._memo, self.b.scan)  # batched NER
        self._find_split(req)
        # Every string that would travel (tool names and schema values, stop sequences, extra fields
        # of blocks, ...), not only those redaction rewrites: a value there still counts for the
        # verdict, and if it is not rewritten the leak check refuses the call (fails closed).
        for t in request_texts(req):
            if t:
                for f in self.findings(t):
                    counts[f.entity] += 1
                    if f.entity in protected:
                        self.protected = True
        if self.protected and self.parent is not None:
            self.parent.protected = True  # a nested route's guard (route_rule.py): the request's flag
        return counts

    def _find_split(self, req: Request) -> None:
        """Pieces of values split across the conversation's texts, added to each text's findings
        (once per conversation and request; see tierwise.privacy.split_values)."""
        texts, roles = conversation_texts(req)
        if len(texts) < 2 or texts in self._split_done:
            return
        # The whole conversation in order, and the user's own texts (a value the user splits
        # across two turns with the assistant's reply between them).
        seqs: list[Sequence[int]] = [range(len(texts))]
        own = [i for i, r in enumerate(roles) if r == "user"]
        if 1 < len(own) < len(texts):
            seqs.append(own)
        found: dict[int, list[Any]] = {}
        client = client_credential(req.headers) or ""  # the key authentication read
        salt = hmac.new(self.b._conv_secret, b"junctions" + client.encode(), hashlib.sha256).digest()
        try:
            for seq in seqs:
                for k, pieces in split_findings([texts[i] for i in seq], self.b.scan_junction, self.findings,
                                                 self.b.junction_cache, salt).items():
                    found.setdefault(seq[k], []).extend(pieces)
        except DetectionFailed:
            raise
        except Exception as e:  # fail closed, as a detector failure
            raise DetectionFailed(type(e).__name__) from None
        if len(self._split_done) < MAX_MEMO_TEXTS:
            self._split_done.add(texts)
        for i, pieces in found.items():
            t = texts[i]
            self._split[t] = [*self._split.get(t, ()), *pieces]
            if t in self._memo:
                self._memo[t] = merge(self._memo[t], pieces)

    def _values(self, req: Request, entities: frozenset[str]) -> dict[str, str]:
        """Detected values (value -> entity) for the leak check and for redacting every occurrence
        (pieces of split values are not: a piece such as `com` is in many bodies; the pieces
        themselves are redacted with their texts)."""
        vals: dict[str, str] = {}
        for t in request_texts(req):
            if t:
                for f in self.findings(t):
                    if f.entity in entities and f.detector != SPLIT:
                        vals.setdefault(t[f.start:f.end], f.entity)
        return vals

    # ------------------------------------------------------------------ mapping

    def _conversation(self, req: Request) -> str | None:
        m = self.b.cfg.mapping
        name = req.headers.get(m.header)
        if not name and m.metadata_key:
            v = req.metadata.get(m.metadata_key)
            name = v if isinstance(v, str) else None
        if not name:
            return None
        client = client_credential(req.headers) or ""  # the key authentication read
        msg = hashlib.sha256(client.encode()).digest() + name.encode()[:1024]
        return hmac.new(self.b._conv_secret, msg, hashlib.sha256).hexdigest()

    def pseudonymizer(self, req: Request) -> Pseudonymizer:
        if self.parent is not None:
            return self.parent.pseudonymizer(req)
        if self._p is None:
            self._conv = self._conversation(req)
            p = self.b.store.load(self._conv) if self._conv else None
            self._p = p if p is not None else Pseudonymizer(self._surrogates)
        return self._p

    # ------------------------------------------------------------------ one crossing

    def _step(self, ctx: Context, dep: Deployment, ok: bool, reason: str, detail: dict[str, Any]) -> Step:
        s = Step("decision", "privacy", ok=ok, reason=reason, detail={"privacy": detail})
        ctx.trace.steps.append(s)  # not `decide`: the route's own one-line reason stays
        return s

    def outgoing(self, dep: Deployment, req: Request, ctx: Context
                 ) -> tuple[Request, Pseudonymizer | None, Callable[[bytes], None]]:
        """The request to send to remote `dep` (redacted as the policy says), the mapping to restore
        its answer with (None: nothing to restore), and the check of its encoded body."""
        b = self.b
        regions = dep.regions
        dest = {"to": dep.name, "provider": dep.provider.name, "regions": sorted(regions)}
        try:
            counts = self.scan_request(req)
        except DetectionFailed as e:
            self._step(ctx, dep, False, f"refused {dep.name}: the privacy detector failed",
                       {**dest, "action": "refused", "why": f"detector failed ({e})"})
            raise PrivacyRefused(f"privacy: not sent to remote model {dep.name!r}: "
                                 f"{getattr(e, 'unreadable', None) or 'the privacy detector failed'} (fails closed)"
                                 ) from None
        classes = b.table.classes_of(counts)
        verdict: Verdict = decide(self.policies, classes, b.table.class_entities, regions, counts)
        audit: dict[str, Any] = {**dest, "classes": classes, "entities": dict(counts)}
        if verdict.action == "block":
            self._step(ctx, dep, False, f"blocked: {verdict.reason}", {**audit, "action": "blocked",
                                                                        "why": verdict.reason})
            raise PrivacyBlocked(f"request blocked by the privacy policy: it {verdict.reason} from remote models")
        if verdict.action == "send" and (why := kept_from(self, req, regions)) is not None:
            verdict = Verdict("refuse", reason=why)
        if verdict.action == "refuse":
            self._step(ctx, dep, False, f"refused {dep.name}: {verdict.reason}",
                       {**audit, "action": "refused", "why": verdict.reason})
            raise PrivacyRefused(f"privacy: not sent to remote model {dep.name!r}: {verdict.reason}")
        p: Pseudonymizer | None = None
        out = req
        values: dict[str, str] = {}
        if verdict.redact:
            p = self.pseudonymizer(req)
            ents = verdict.redact
            findings = self.findings
            values = self._values(req, ents)
            key = (ents, frozenset(values))
            done = self._redacted.get(key)
            if done is None:  # a value found in one text is redacted wherever it occurs (ValueSpread)
                done = self._redacted[key] = ({}, ValueSpread(values))
            cache, spread = done

            def detect(s: str) -> list[Any]:
                if s in cache:
                    return []  # redacted before (the next remote call of this request): the memo has it
                return spread.add(s, [f for f in findings(s) if f.entity in ents])

            memo = RedactMemo(p, cache, MAX_MEMO_TEXTS)
            out = redact_request(req, memo, detect)  # type: ignore[arg-type]
            if req.extra:
                out = replace(out, extra=_Redactor(memo, detect).json(req.extra))  # type: ignore[arg-type]
            if (conv := root_of(self)._conv) is not None:  # the request's own guard's (two deep: review31d)
                b.store.save(conv, p)
        redacted = {e: n for e, n in counts.items() if e in verdict.redact}
        kept = {e: n for e, n in counts.items() if e not in verdict.redact}
        step = self._step(ctx, dep, True, (f"redacted {sum(redacted.values())} value(s) for {dep.name}"
                                           if redacted else f"sent to {dep.name}"),
                          {**audit, "action": "redacted" if redacted else "sent", "redacted": redacted,
                           "kept": kept})
        if not redacted:
            values = {}
        slots = tool_name_slots(out, values) if values else None  # tool names sent as they are
        store_payload = b.cfg.audit.store_payload
        max_payload = b.cfg.audit.max_payload_bytes

        def check(body: bytes) -> None:
            """Last line of defence, on the exact bytes about to leave."""
            detail = step.detail["privacy"]
            detail["sha256"] = hashlib.sha256(body).hexdigest()
            detail["bytes"] = len(body)
            leaked = values_in_body(body, values, slots)
            detail["leak_check"] = {"values": len(values), "found": len(leaked)}
            if leaked:
                step.ok = False
                kinds = ", ".join(sorted({values[e] for e in leaked}))  # entity names, never a value
                detail.update(action="refused", why=f"a detected value ({kinds}) was still in the outgoing body "
                                                     "(leak check)")
                step.reason = f"refused {dep.name}: a detected value ({kinds}) was still in the outgoing body"
                raise PrivacyRefused(f"privacy: not sent to remote model {dep.name!r}: a detected value ({kinds}) was "
                                     "still in the outgoing body (fails closed)")
            if store_payload and len(body) <= max_payload:
                detail["payload"] = body.decode("utf-8", "replace")

        return out, p, check

