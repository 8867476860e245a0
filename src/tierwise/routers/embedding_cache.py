"""A bounded on-disk cache of prompt embeddings, so training and evaluating embedding routers
embeds each distinct prompt once, across folds, routers and runs.

Keyed by content: SHA-256 of the model name and the prompt text (the text itself is never
stored, only its hash and its vector). One SQLite file per cache folder; several processes may
share it (SQLite's own locking). Bounded by `max_entries`: the oldest insertions are dropped
first. An in-memory layer in front serves repeated look-ups within one process.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.sqlite_wal import retry_locked

DEFAULT_MAX_ENTRIES = 200_000  # 384-dim float32: about 300 MB at most


def default_cache_dir() -> Path:
    """`$TIERWISE_CACHE_DIR/embeddings`, else `$XDG_CACHE_HOME/tierwise/embeddings` (~/.cache by default)."""
    if os.environ.get("TIERWISE_CACHE_DIR"):
        return Path(os.environ["TIERWISE_CACHE_DIR"]) / "embeddings"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tierwise" / "embeddings"


def _key(model: str, text: str) -> bytes:
    return hashlib.sha256(model.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    def __init__(self, folder: str | os.PathLike[str] | None = None, *, max_entries: int = DEFAULT_MAX_ENTRIES,
                 memory_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be ≥ 1")
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.max_entries = max_entries
        self.memory_entries = memory_entries
        self._mem: dict[bytes, np.ndarray] = {}
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.folder / "embeddings.sqlite3", timeout=30.0)
            retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))  # other processes may open it at once
            retry_locked(lambda: db.execute(
                "CREATE TABLE IF NOT EXISTS emb (id INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB UNIQUE NOT NULL,"
                " dim INTEGER NOT NULL, vec BLOB NOT NULL)"))
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _remember(self, key: bytes, vec: np.ndarray) -> None:
        if len(self._mem) >= self.memory_entries:
            self._mem.pop(next(iter(self._mem)))
        self._mem[key] = vec

    def _read(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        out: dict[bytes, np.ndarray] = {}
        db = self._conn()
        for s in range(0, len(keys), 500):
            part = keys[s:s + 500]
            q = f"SELECT key, dim, vec FROM emb WHERE key IN ({','.join('?' * len(part))})"
            for key, dim, blob in db.execute(q, part):
                v = np.frombuffer(blob, dtype=np.float32)
                if len(v) == dim:
                    out[bytes(key)] = v
        return out

    def _write(self, rows: list[tuple[bytes, np.ndarray]]) -> None:
        db = self._conn()
        with db:
            db.executemany("INSERT OR REPLACE INTO emb (key, dim, vec) VALUES (?, ?, ?)",
                           [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in rows])
            (count,) = db.execute("SELECT COUNT(*) FROM emb").fetchone()
            if count > self.max_entries:  # drop the oldest insertions
                db.execute("DELETE FROM emb WHERE id IN (SELECT id FROM emb ORDER BY id LIMIT ?)",
                           (count - self.max_entries,))

    def encode(self, texts: Sequence[str], embedder: Any) -> np.ndarray:
        """Vectors of `texts` from the cache, embedding (once each) only the ones it lacks."""
        model = str(getattr(embedder, "model_name", "model"))
        keys = [_key(model, t) for t in texts]
        found = {k: self._mem[k] for k in keys if k in self._mem}
        wanted = list(dict.fromkeys(k for k in keys if k not in found))
        if wanted:
            disk = self._read(wanted)
            for k, v in disk.items():
                self._remember(k, v)
            found.update(disk)
        missing = list(dict.fromkeys(i for i, k in enumerate(keys) if k not in found))
        first: dict[bytes, int] = {}
        for i in missing:
            first.setdefault(keys[i], i)
        self.hits += len(texts) - len(first)
        self.misses += len(first)
        if first:
            vecs = np.asarray(embedder.encode([texts[i] for i in first.values()]), dtype=np.float32)
            rows = list(zip(first.keys(), vecs, strict=True))
            self._write(rows)
            for k, v in rows:
                self._remember(k, v)
                found[k] = v
        if not texts:
            return np.zeros((0, 0), np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)
