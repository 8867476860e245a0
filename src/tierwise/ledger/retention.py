"""How long the ledger keeps its rows: `ledger.keep_days` and `ledger.max_rows`, applied by the writer thread.

Without them the ledger grows by one row a request for as long as the gateway runs (~1 KB a row, more with
`store_text`): at a client's request rate, for ever, until the disk is full. With either set, the writer
deletes the oldest rows past it, at most every `EVERY_S` seconds while records come in (an idle gateway's
ledger does not grow), in transactions of `CHUNK` rows so a large first pruning (an existing ledger, a
lowered bound) does not hold the database's write lock for long; at most `ROUNDS` chunks at a time, then the
writer goes back to its records and resumes at once. SQLite reuses the freed pages, so the file stops growing
at about the bound's size (it does not shrink: `VACUUM` when the disk is wanted back).
"""

from __future__ import annotations

import logging
import sqlite3
import time

log = logging.getLogger("tierwise.ledger")

EVERY_S = 60.0
CHUNK = 5_000
ROUNDS = 20


class Retention:
    def __init__(self, keep_days: float | None, max_rows: int | None) -> None:
        self.keep_s = keep_days * 86_400 if keep_days is not None else None
        self.max_rows = max_rows
        self.next_at = 0.0  # monotonic: the first look is at the first batch written
        self.deleted = 0

    @property
    def active(self) -> bool:
        return self.keep_s is not None or self.max_rows is not None

    def due(self) -> bool:
        return self.active and time.monotonic() >= self.next_at

    def prune(self, db: sqlite3.Connection) -> int:
        """Delete rows past the bounds (oldest first, by `ts`); the number deleted."""
        done = 0
        more = False
        try:
            for _ in range(ROUNDS):
                n = self._chunk(db)
                done += n
                if n < CHUNK:
                    break
            else:
                more = True
        except sqlite3.Error as e:  # a locked or full database: the next round tries again
            log.warning("ledger: could not delete old rows (ledger.keep_days / max_rows): %s", type(e).__name__)
        self.deleted += done
        self.next_at = time.monotonic() + (0.0 if more else EVERY_S)
        return done

    def _chunk(self, db: sqlite3.Connection) -> int:
        n = 0
        with db:
            if self.keep_s is not None:
                n += db.execute("DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests WHERE ts < ? "
                                "ORDER BY ts LIMIT ?)", (time.time() - self.keep_s, CHUNK)).rowcount
            if self.max_rows is not None and n < CHUNK:
                over = db.execute("SELECT count(*) FROM requests").fetchone()[0] - self.max_rows
                if over > 0:
                    n += db.execute("DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests ORDER BY ts "
                                    "LIMIT ?)", (min(over, CHUNK - n),)).rowcount
        return n
