"""The detector's findings for long texts, kept across one client's requests.

A coding agent resends the same long texts every turn: Claude Code's system prompt and its 24 tool
definitions (~19,000 tokens) come back unchanged in each main-agent request, and with NER on their scan
took ~2 s per turn on a 2-core machine, every turn. Findings depend on the text alone (and the detector's
configuration, fixed for a Boundary), so they are kept here, keyed by a keyed digest of the client's key and
the text: no text is held, and one client's scans neither answer nor time another's (the junction cache's
salting, tierwise.privacy.split_values). Bounded by entries, least recently used out first; thread-safe
(large requests are scanned in worker threads).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

MIN_CHARS = 64  # shorter texts (a word, a field name) are not worth an entry
MAX_ENTRIES = 2048


class FindingsCache:
    __slots__ = ("_entries", "_lock", "max_entries")

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
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
        with self._lock:
            self._entries[key] = tuple(findings)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
