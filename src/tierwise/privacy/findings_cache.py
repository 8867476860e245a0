"""The detector's findings for a client's texts, kept across its requests.

A coding agent resends the same long texts every turn: Claude Code's system prompt and its 24 tool
definitions (~19,000 tokens) come back unchanged in each main-agent request, and with NER on their scan
took ~2 s per turn on a 2-core machine, every turn. Findings depend on the text alone (and the detector's
configuration, fixed for a Boundary), so they are kept here, keyed by a keyed digest of the client's key and
the text: no text is held, and one client's scans neither answer nor time another's (the junction cache's
salting, tierwise.privacy.split_values). Thread-safe (large requests are scanned in worker threads).

Bounded by entries and by the findings they hold, least recently used out first. Entries alone did not
bound it: a text of up to `detection.max_chars` (4,000,000) characters can hold ~570,000 findings (an
e-mail address every 7 characters, ~75 MB of Finding objects), and 2,048 such entries were a client's to
fill. A text with more than MAX_ENTRY_FINDINGS findings is not kept (a prompt resent every turn holds tens);
all entries together hold at most MAX_FINDINGS (~9 MB).

Every text is kept, short ones too (session 32, privscan32). Texts under 64 characters were not: but with NER
each short text with a capital is a spaCy call of ~6 ms, and a Claude Code turn holds ~110 of them (tool names,
schema property descriptions, enum values): ~0.75 s of every warm turn went to rescanning them. A turn has
~370 distinct texts, so a client's part holds MAX_CLIENT_ENTRIES = 4,096 (~133 bytes each without findings:
~0.5 MB a part, ~4.4 MB for all).

Each client has a part of its own (session 23), bounded by MAX_CLIENT_ENTRIES and MAX_CLIENT_FINDINGS; at
most MAX_CLIENTS parts are kept, the least recently used dropped whole. With one shared LRU, a client's
texts pushed out another's entries by the findings they held: a client that filled the cache with its own
texts and then timed which of them were scanned again (a miss rescans: milliseconds with NER) learned how
many values another client's text had just held. A part is now only ever emptied by its own client's
entries, or dropped whole for a newer client: what one client can observe of another is that some other
client was active, never what its texts held. A gateway without client keys cannot tell its clients apart:
every client that sends the same key (or none) is one client here, as in the answer cache (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable
from typing import Any

MAX_CLIENTS = 8  # clients' parts kept; the least recently used goes whole
MAX_CLIENT_ENTRIES = 4096  # a Claude Code turn: ~370 distinct texts
MAX_CLIENT_FINDINGS = 8192  # findings one client's part holds (~140 bytes each; all parts: 65,536, ~9 MB)
MAX_FINDINGS = MAX_CLIENTS * MAX_CLIENT_FINDINGS
MAX_ENTRY_FINDINGS = 4096  # a text with more is scanned each time (one text cannot push every other out)

Key = tuple[bytes, bytes]  # (the client's salt, the keyed digest of the text)


class _Part:
    __slots__ = ("entries", "held")

    def __init__(self) -> None:
        self.entries: OrderedDict[bytes, tuple[Any, ...]] = OrderedDict()
        self.held = 0


class FindingsCache:
    __slots__ = ("_parts", "_lock", "max_entries", "max_findings", "max_entry_findings", "max_clients",
                 "findings_held")

    def __init__(self, max_entries: int = MAX_CLIENT_ENTRIES, max_findings: int = MAX_CLIENT_FINDINGS,
                 max_entry_findings: int = MAX_ENTRY_FINDINGS, max_clients: int = MAX_CLIENTS) -> None:
        self.max_entries = max_entries  # per client
        self.max_findings = max_findings  # per client
        self.max_entry_findings = min(max_entry_findings, max_findings)
        self.max_clients = max_clients
        self.findings_held = 0  # over every client
        self._parts: OrderedDict[bytes, _Part] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(salt: bytes, text: str) -> Key:
        return salt, hashlib.blake2b(text.encode("utf-8", "surrogatepass"), key=salt[:64], digest_size=16).digest()

    def get(self, key: Key) -> list[Any] | None:
        client, digest = key
        with self._lock:
            part = self._parts.get(client)
            got = part.entries.get(digest) if part is not None else None
            if got is None:
                return None
            part.entries.move_to_end(digest)  # type: ignore[union-attr]
            self._parts.move_to_end(client)
        return list(got)

    def put(self, key: Key, findings: list[Any]) -> None:
        if len(findings) > self.max_entry_findings:
            return
        client, digest = key
        with self._lock:
            part = self._parts.get(client)
            if part is None:
                part = self._parts[client] = _Part()
                while len(self._parts) > self.max_clients:
                    self.findings_held -= self._parts.popitem(last=False)[1].held
            else:
                self._parts.move_to_end(client)
            old = part.entries.pop(digest, None)
            if old is not None:
                part.held -= len(old)
                self.findings_held -= len(old)
            part.entries[digest] = tuple(findings)
            part.held += len(findings)
            self.findings_held += len(findings)
            while len(part.entries) > self.max_entries or part.held > self.max_findings:
                n = len(part.entries.popitem(last=False)[1])
                part.held -= n
                self.findings_held -= n

    def __contains__(self, key: Key) -> bool:
        client, digest = key
        with self._lock:
            part = self._parts.get(client)
            return part is not None and digest in part.entries

    def __len__(self) -> int:
        return sum(len(p.entries) for p in self._parts.values())


def prefill(cache: FindingsCache, salt: bytes | None, texts: Iterable[str], skip: Container[str],
            scan: Callable[[str], list[Any]]) -> None:
    """Scan the texts of a request that neither `skip` (the request's memo) nor the cache holds in one call, and
    keep their findings: the per-text scans that follow find them cached. With NER on, `scan_many` batches the
    spaCy calls (privacy/ner.py: a Claude Code first turn's ~370 new texts were ~370 model calls). At most one
    client part's worth of texts (the rest are scanned one by one, as before); if the batch fails, nothing is
    kept and the per-text scans fail closed at the text that fails. `scan`: the Boundary's detector (its
    `scan_many`, when it has one: privacy/text_cleaning.detector_for)."""
    scan_many: Callable[[list[str]], list[list[Any]]] | None = getattr(scan, "scan_many", None)
    if scan_many is None or salt is None:
        return
    todo: dict[str, Key] = {}
    for t in texts:
        if t and t not in skip and t not in todo:
            key = cache.key(salt, t)
            if key not in cache:
                todo[t] = key
                if len(todo) >= cache.max_entries:
                    break
    if len(todo) < 2:
        return
    try:
        found = scan_many(list(todo))
    except Exception:
        return
    for key, raw in zip(todo.values(), found, strict=True):
        cache.put(key, raw)
