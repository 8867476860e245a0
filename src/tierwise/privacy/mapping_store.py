"""Encrypted, expiring, bounded storage of conversation mappings that span requests.

By default a Pseudonymizer lives only for one request. Chat clients resend the whole history
on every turn, so re-redacting each turn from scratch is safe, but the numbering could then
drift (`<PERSON_1>` on turn one, `<PERSON_2>` on turn two for the same person, if detection
order changes). A `MappingStore` keeps the mapping between turns:

- **Key.** `conversation_key(client_key, request, secret)` = HMAC-SHA256 under the store's
  secret of (SHA-256 of the client's API key, SHA-256 of the conversation's first message as
  canonical JSON). The first message is the one thing a client resends unchanged on every
  turn; the client key keeps two clients with the same opening message apart. Neither is
  stored: only the HMAC.
- **Encryption.** Each entry is the Pseudonymizer's state as JSON, sealed with AES-256-GCM
  (`cryptography`), a fresh 96-bit nonce per write and the conversation key as associated
  data (an entry cannot be replayed under another conversation's key). Without a configured
  key, a random one is made per process: mappings then end with the process, which fails
  closed (the next turn gets fresh placeholders; nothing leaks).
- **Bounds.** Every entry expires `ttl_s` seconds after its last write; at most `max_entries`
  are kept (least recently used evicted first); an entry whose sealed size exceeds
  `max_entry_bytes` is not stored.
- **Where.** In memory, or in a SQLite file (`path`) holding only keys, times and ciphertext.
  Neither `repr()` nor any log line shows values.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tierwise.canonical import Request
from tierwise.privacy.redact import Pseudonymizer


def conversation_key(client_key: str, request: Request, secret: bytes) -> str:
    """The store key of `request`'s conversation for the client holding `client_key` (hex)."""
    first = asdict(request.messages[0]) if request.messages else {}
    first_hash = hashlib.sha256(orjson.dumps(first, option=orjson.OPT_SORT_KEYS)).digest()
    client_hash = hashlib.sha256(client_key.encode()).digest()
    return hmac.new(secret, client_hash + first_hash, hashlib.sha256).hexdigest()


class MappingStore:
    """Conversation key -> sealed Pseudonymizer state, with a TTL and a size bound."""

    def __init__(
        self,
        key: bytes | None = None,
        *,
        ttl_s: float = 3600.0,
        max_entries: int = 10_000,
        max_entry_bytes: int = 1 << 20,
        path: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if key is not None and len(key) != 32:
            raise ValueError("the mapping store key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key if key is not None else AESGCM.generate_key(bit_length=256))
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_entry_bytes = max_entry_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._mem: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires, blob)
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(os.fspath(path), check_same_thread=False, isolation_level=None)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS mapping (k TEXT PRIMARY KEY, exp REAL, at REAL, blob BLOB)"
            )
            os.chmod(os.fspath(path), 0o600)

    def __repr__(self) -> str:
        return (
            f"MappingStore(<{len(self)} sealed entries>, ttl_s={self.ttl_s}, max_entries={self.max_entries})"
        )

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            if self._db is not None:
                return int(self._db.execute("SELECT COUNT(*) FROM mapping").fetchone()[0])
            return len(self._mem)

    def save(self, conv_key: str, p: Pseudonymizer) -> bool:
        """Seal and store `p` under `conv_key`; False when the entry is over the size bound."""
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, orjson.dumps(p.state()), conv_key.encode())
        if len(blob) > self.max_entry_bytes:
            return False
        now = self._clock()
        with self._lock:
            self._expire()
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO mapping VALUES (?, ?, ?, ?)",
                    (conv_key, now + self.ttl_s, now, blob),
                )
                over = self._db.execute("SELECT COUNT(*) FROM mapping").fetchone()[0] - self.max_entries
                if over > 0:
                    self._db.execute(
                        "DELETE FROM mapping WHERE k IN (SELECT k FROM mapping ORDER BY at LIMIT ?)", (over,)
                    )
            else:
                self._mem[conv_key] = (now + self.ttl_s, blob)
                self._mem.move_to_end(conv_key)
                while len(self._mem) > self.max_entries:
                    self._mem.popitem(last=False)
        return True

    def load(self, conv_key: str) -> Pseudonymizer | None:
        """The stored mapping, or None when absent, expired or not decryptable with this key."""
        now = self._clock()
        with self._lock:
            if self._db is not None:
                row = self._db.execute("SELECT exp, blob FROM mapping WHERE k = ?", (conv_key,)).fetchone()
                if row is not None:
                    self._db.execute("UPDATE mapping SET at = ? WHERE k = ?", (now, conv_key))
            else:
                row = self._mem.get(conv_key)
                if row is not None:
                    self._mem.move_to_end(conv_key)
        if row is None or row[0] <= now:
            return None
        blob = bytes(row[1])
        try:
            state = orjson.loads(self._aead.decrypt(blob[:12], blob[12:], conv_key.encode()))
        except (InvalidTag, ValueError):
            return None
        return Pseudonymizer.from_state(state)

    def _expire(self) -> None:
        now = self._clock()
        if self._db is not None:
            self._db.execute("DELETE FROM mapping WHERE exp <= ?", (now,))
            return
        # Oldest-used first: drop expired entries from the front (load() re-checks expiry,
        # so one still further back is never served; max_entries bounds them meanwhile).
        while self._mem:
            k, (exp, _) = next(iter(self._mem.items()))
            if exp > now:
                break
            del self._mem[k]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
