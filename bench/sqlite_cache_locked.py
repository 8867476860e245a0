"""A request-path lookup and store of the sqlite answer cache while another process holds the file's write lock:
seconds each waits before the cache gives up (a miss, not stored). `python bench/sqlite_cache_locked.py`."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from tierwise.cache.backends import SqliteBackend


async def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "c.db")
        b = SqliteBackend(path, 1 << 20)
        await b.put("k", b"v", ttl=60, route="r", tenant="t")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        for name, call in (("lookup", lambda: b.get("k")),
                           ("store", lambda: b.put("k2", b"v", ttl=60, route="r", tenant="t"))):
            t0 = time.monotonic()
            try:
                await call()
                outcome = "answered"
            except sqlite3.OperationalError as e:
                outcome = str(e)
            print(f"{name}: {time.monotonic() - t0:.2f} s ({outcome})")
        other.execute("ROLLBACK")
        other.close()
        await b.close()


if __name__ == "__main__":
    asyncio.run(main())
