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

`max_rows` keeps the learning loop's evidence (rows of kind `eval` and `shadow`: verdicts, shadow pairs) apart from
the requests' rows: requests push out only requests, evidence only evidence, and evidence may hold up to half of
the bound. Cut as one pile, a busy route's requests pushed out every verdict the flywheel, `tierwise boundary` and
a local judge's training read (at `max_rows: 1000`, 1,000 requests after its last verdict a route had none left).
The evidence rows are counted and found on a partial index (`requests_evidence`, built by the first pruning: the
evidence is a small share of the rows), and the requests' cut on the `ts` index alone.

Refused rows that cost nothing (status >= 400, no cost: a spent budget's 429s, a rejected approval's 403s) are a pile
of their own the same way, at most a quarter of the bound (`requests_unserved`; the requests' cut passes both piles on
`requests_aside`): any client can write them as fast as it is refused, and cut as one pile with the requests, a client
whose every request was refused pushed out the rows of what was paid (8 of 8 paid rows gone at `max_rows: 40` after
120 refusals, session 33, costs5; tests/budgets/test_ledger_flood.py). A row with tokens is never one of them: a
failed call of a model with no price adds 0 to the cost, and such rows (a broken stream, a client gone, tokens billed)
were cut with the refusals until session 33's review (review33b; tests/ledger/test_retention_refused_paid.py).

`keep_days` measures time on the monotonic clock from the process's first pruning: the wall clock jumping
forward (a bad NTP answer, a VM resumed with a wrong clock) no longer deletes the history it jumped over at once.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time

log = logging.getLogger("tierwise.ledger")

EVERY_S = 60.0
CHUNK = 5_000
ROUNDS = 20
_FIRST = -(1 << 63)  # below any rowid: a cut at (ts, _FIRST) keeps every row of that `ts`
EVIDENCE = "kind IN ('eval', 'shadow')"  # the learning loop's rows (as the partial index's WHERE says it)
# Refused rows that cost nothing (a spent budget's 429s, a rejected approval's 403s, a bad request's 400s): no model
# was called, so no tokens either (review33b: a failed call of a model with no price adds 0 to the cost, and such a
# broken stream's or cut client's row, billed tokens and all, was cut with the refusals)
REFUSED = ("kind NOT IN ('eval', 'shadow') AND status >= 400 AND coalesce(cost_usd, 0) = 0 AND "
           "coalesce(input_tokens, 0) = 0 AND coalesce(output_tokens, 0) = 0 AND "
           "coalesce(cache_read_tokens, 0) = 0 AND coalesce(cache_write_tokens, 0) = 0")
APART = f"({EVIDENCE} OR {REFUSED})"  # the rows of both piles, which the requests' pile passes over
# (the refused pile's indexes under new names: costs5's, over its wider WHERE, would not serve the queries)
_INDEXES = ["DROP INDEX IF EXISTS requests_refused", "DROP INDEX IF EXISTS requests_apart"] + [
    f"CREATE INDEX IF NOT EXISTS requests_{name} ON requests(ts) WHERE {where}"
    for name, where in (("evidence", EVIDENCE), ("unserved", REFUSED), ("aside", APART))]
_MAX_STEPS = 64  # steps of the search for the requests' cut (each passes the rows apart it found)


def _delete(where: str) -> str:
    return (f"DELETE FROM requests WHERE rowid IN (SELECT rowid FROM requests WHERE {where}(ts, rowid) < (?, ?) "
            "ORDER BY ts, rowid LIMIT ?)")


_DELETE = _delete("")
_DELETE_EVIDENCE = _delete(f"{EVIDENCE} AND ")
_DELETE_REFUSED = _delete(f"{REFUSED} AND ")
_DELETE_REQUESTS = _delete(f"NOT coalesce({APART}, 0) AND ")
# (condition, its share of max_rows at most, its delete): each pushes out only its own oldest rows past its share
_PILES = [(EVIDENCE, 2, _DELETE_EVIDENCE), (REFUSED, 4, _DELETE_REFUSED)]


class Retention:
    def __init__(self, keep_days: float | None, max_rows: int | None) -> None:
        self.keep_s = keep_days * 86_400 if keep_days is not None else None
        self.max_rows = max_rows
        self.next_at = 0.0  # monotonic: the first look is at the first batch written
        self.deleted = 0
        self.indexed = False  # the evidence rows' partial index exists (made by the first pruning under max_rows)
        self._anchor: tuple[float, float] | None = None  # (wall, monotonic) at the first pruning

    @property
    def active(self) -> bool:
        return self.keep_s is not None or self.max_rows is not None

    def due(self) -> bool:
        return self.active and time.monotonic() >= self.next_at

    def now(self) -> float:
        """The wall clock, never ahead of its reading at the first pruning plus the monotonic time since: a jump
        forward does not age every row at once (a jump back is taken: rows are kept longer, never deleted early)."""
        wall, mono = time.time(), time.monotonic()
        if self._anchor is None:
            self._anchor = (wall, mono)
        return min(wall, self._anchor[0] + (mono - self._anchor[1]))

    def prune(self, db: sqlite3.Connection) -> int:
        """Delete rows past the bounds (oldest first, by `ts`); the number deleted."""
        done = 0
        more = False
        rounds = ROUNDS
        try:
            for sql, cut in self.cuts(db):
                while rounds:
                    rounds -= 1
                    with db:
                        n = db.execute(sql, (*cut, CHUNK)).rowcount
                    done += n
                    if n < CHUNK:
                        break
                else:
                    more = True
                    break
        except sqlite3.Error as e:  # a locked or full database: the next round tries again
            log.warning("ledger: could not delete old rows (ledger.keep_days / max_rows): %s", type(e).__name__)
        self.deleted += done
        self.next_at = time.monotonic() + (0.0 if more else EVERY_S)
        return done

    def cuts(self, db: sqlite3.Connection) -> list[tuple[str, tuple[float, int]]]:
        """(delete statement, (ts, rowid) of the oldest row it keeps) for each bound that is passed."""
        out: list[tuple[str, tuple[float, int]]] = []
        if self.keep_s is not None:
            out.append((_DELETE, (self.now() - self.keep_s, _FIRST)))
        if self.max_rows is not None:
            if not self.indexed:
                with db:
                    for index in _INDEXES:
                        db.execute(index)
                self.indexed = True
            # One snapshot for the counts and the rows they find (another process may delete between them); the
            # writer's own transaction, were one open, is left as it is.
            began = not db.in_transaction
            if began:
                db.execute("BEGIN")
            try:
                out += self._bound_cuts(db, self.max_rows)
            finally:
                if began:
                    db.rollback()  # (read only)
        return out

    @staticmethod
    def _bound_cuts(db: sqlite3.Connection, bound: int) -> list[tuple[str, tuple[float, int]]]:
        total = db.execute("SELECT count(*) FROM requests").fetchone()[0]
        if total <= bound:
            return []
        out: list[tuple[str, tuple[float, int]]] = []
        apart = kept = 0
        for where, part, delete in _PILES:
            n = db.execute(f"SELECT count(*) FROM requests WHERE {where}").fetchone()[0]
            keep = min(n, bound // part)  # (evidence: at most half the bound; refused rows: a quarter)
            if n > keep:
                row = db.execute(f"SELECT ts, rowid FROM requests WHERE {where} ORDER BY ts, rowid LIMIT 1 OFFSET ?",
                                 (n - keep,)).fetchone()
                out.append((delete, (row[0], row[1]) if row else (math.inf, _FIRST)))
            apart += n
            kept += keep
        drop = total - apart - (bound - kept)  # requests' rows past their part of the bound
        if drop > 0:
            out.append((_DELETE_REQUESTS, _requests_cut(db, drop)))
        return out


def _requests_cut(db: sqlite3.Connection, drop: int) -> tuple[float, int]:
    """The row (in `ts` order, of any kind) before which `drop` rows are requests' rows: the n-th row has n - e
    requests' rows before it, e the evidence rows among them (counted on their index), so n = drop + e is searched
    by passing the evidence rows found until none is new (a few steps: evidence is a small share of the rows).
    Past the last row: every requests' row goes."""
    at = drop
    cut: tuple[float, int] = (math.inf, _FIRST)
    for _ in range(_MAX_STEPS):
        row = db.execute("SELECT ts, rowid FROM requests ORDER BY ts, rowid LIMIT 1 OFFSET ?", (at,)).fetchone()
        if row is None:
            return (math.inf, _FIRST)
        cut = (row[0], row[1])
        nxt = drop + db.execute(f"SELECT count(*) FROM requests WHERE {APART} AND (ts, rowid) < (?, ?)",
                                cut).fetchone()[0]
        if nxt == at:
            break
        at = nxt
    return cut  # (after _MAX_STEPS: a little short of `drop`; the next pruning goes on)
