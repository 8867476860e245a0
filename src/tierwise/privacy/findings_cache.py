"""The detector's findings for long texts, kept across one client's requests.

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
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

MIN_CHARS = 64  # shorter texts (a word, a field name) are not worth an entry
MAX_ENTRIES = 2048
MAX_FINDINGS = 65_536  # findings held over all entries (~140 bytes each)
MAX_ENTRY_FINDINGS = 4096  # a text with more is scanned each time (one text cannot push every other out)


class FindingsCache:
    __slots__ = ("_entries", "_lock", "max_entries", "max_findings", "max_entry_findings", "findings_held")

    def __init__(self, max_entries: int = MAX_ENTRIES, max_findings: int = MAX_FINDINGS,
                 max_entry_findings: int = MAX_ENTRY_FINDINGS) -> None:
        self.max_entries = max_entries
        self.max_findings = max_findings
        self.max_entry_findings = min(max_entry_findings, max_findings)
        self.findings_held = 0
        self._entries: OrderedDict[bytes, tuple[Any, ...]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(salt: bytes, text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), key=salt[:64], digest_size=16).digest()

    def get(self, key: bytes) -> list[Any] | None:
        with self._lock:
            got = self._entries.get(key)
            if got is None:
                return None
            self._entries.move_to_end(key)
        return list(got)

    def put(self, key: bytes, findings: list[Any]) -> None:
        if len(findings) > self.max_entry_findings:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.findings_held -= len(old)
            self._entries[key] = tuple(findings)
            self.findings_held += len(findings)
            while len(self._entries) > self.max_entries or self.findings_held > self.max_findings:
                self.findings_held -= len(self._entries.popitem(last=False)[1])

    def __len__(self) -> int:
        return len(self._entries)
