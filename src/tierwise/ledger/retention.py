"""How long the ledger keeps its rows: `ledger.keep_days` and `ledger.max_rows`, applied by the writer thread.

Without them the ledger grows by one row a request for as long as the gateway runs (~1 KB a row, more with
`store_text`): at a client's request rate, for ever, until the disk is full. With either set, the writer
deletes the oldest rows past it, at most every `EVERY_S` seconds while records come in (an idle gateway's
ledger does not grow), in transactions of `CHUNK` rows so a large first pruning (an existing ledger, a
lowered bound) does not hold the database's write lock for long; at most `ROUNDS` chunks at a time, then the
writer goes back to its records and resumes at once. SQLite reuses the freed pages, so the file stops growing
at about the bound's size (it does not shrink: `VACUUM` when the disk is wanted back).

Each pruning first finds where to cut, in one read: the oldest row to keep, by (`ts`, rowid). Its chunks then
delete the rows before that cut. `max_rows` needs the row count for it, and `count(*)` reads the whole `ts`
index (~0.3 s at ten million rows): once a pruning, not once a chunk (review30a: a round of 20 chunks counted 20
times, ~4.5 s of the writer at ten million rows). Processes sharing the file (`serve --workers N`) that prune at
the same moment find the same cut, so together they delete the rows past the bound once (each deleting the
excess it had counted deleted it once per process, below `max_rows`).
"""

from __future__ import annotations

import logging
import sqlite3
import time

log = logging.getLogger("tierwise.ledger")

EVERY_S = 60.0
CHUNK = 5_000
ROUNDS = 20
_FIRST = -(1 << 63)  # below any rowid: a cut at (ts, _FIRST) keeps every row of that `ts`
_DELETE = ("DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests WHERE (ts, rowid) < (?, ?) "
           "ORDER BY ts, rowid LIMIT ?)")


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
            cut = self.cut(db)
            if cut is not None:
                for _ in range(ROUNDS):
                    with db:
                        n = db.execute(_DELETE, (*cut, CHUNK)).rowcount
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

    def cut(self, db: sqlite3.Connection) -> tuple[float, int] | None:
        """(ts, rowid) of the oldest row to keep: every row before it is past a bound. None: none is."""
        cuts: list[tuple[float, int]] = []
        if self.keep_s is not None:
            cuts.append((time.time() - self.keep_s, _FIRST))
        if self.max_rows is not None:
            # One snapshot for the count and the row it finds (another process may delete between them); the
            # writer's own transaction, were one open, is left as it is.
            began = not db.in_transaction
            if began:
                db.execute("BEGIN")
            try:
                over = db.execute("SELECT count(*) FROM requests").fetchone()[0] - self.max_rows
                if over > 0:
                    row = db.execute("SELECT ts, rowid FROM requests ORDER BY ts, rowid LIMIT 1 OFFSET ?",
                                     (over,)).fetchone()
                    if row is not None:
                        cuts.append((row[0], row[1]))
            finally:
                if began:
                    db.rollback()  # (read only)
        return max(cuts) if cuts else None
