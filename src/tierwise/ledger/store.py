"""The ledger store: every request as one row in SQLite (WAL), written off the request path.

`submit` turns the record into a row and puts it on a queue (microseconds, never blocks); a
writer thread drains the queue in batches, one transaction per batch. `flush` waits until
everything submitted so far is on disk; `close` flushes and stops the writer, so nothing
accepted is lost on a clean shutdown. With a journal (`tierwise.ledger.journal`), `submit`
also appends the record to it first, so nothing submitted is lost when the process dies either;
journals of dead processes are replayed when a ledger is opened. The queue holds at most
`max_queued` records and `max_queued_chars` characters of conversation text (the writer's batch
included): past either a record waits in the journal only
and the writer reads it back from there once the queue is empty (a dead process's are replayed at
the next start); with no journal, or one at its disk bound (`ledger.journal.max_bytes`), it is dropped,
counted (`backlog`, /health, /metrics) and logged once per burst. Reads (`get`, `query`,
reports) open their own connection, so they never contend with the writer for a Python lock.
"""

from __future__ import annotations

import logging
import operator
import os
import queue
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tierwise.ledger import journal as journal_mod
from tierwise.ledger.records import COLUMNS, JSON_COLUMNS, LedgerRecord, scrub_record
from tierwise.ledger.retention import Retention
from tierwise.sqlite_wal import retry_locked

if TYPE_CHECKING:
    from tierwise.config import JournalConfig

log = logging.getLogger("tierwise.ledger")

_TYPES = {
    "request_id": "TEXT PRIMARY KEY", "ts": "REAL NOT NULL", "stream": "INTEGER", "status": "INTEGER",
    "input_tokens": "INTEGER", "output_tokens": "INTEGER", "cache_read_tokens": "INTEGER",
    "cache_write_tokens": "INTEGER", "tokens_estimated": "INTEGER", "cost_usd": "REAL",
    "reference_cost_usd": "REAL", "latency_ms": "REAL", "ttft_ms": "REAL",
}
_BOOLS = frozenset({"stream", "tokens_estimated"})
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS requests ("
    + ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS)
    + ");\n"
    "CREATE INDEX IF NOT EXISTS requests_ts ON requests(ts);\n"
    "CREATE INDEX IF NOT EXISTS requests_route ON requests(route, ts);\n"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);\n"
)
_VALUES = f"INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_INSERT = "INSERT OR REPLACE " + _VALUES
_INSERT_NEW = "INSERT OR IGNORE " + _VALUES  # journal replay: a row already committed wins
_BATCH = 256
# After the first record of a batch arrives, wait this long for more: under load one commit
# then carries many rows instead of one (a commit costs far more than a row).
_LINGER_S = 0.05
# While records keep coming the writer looks at the queue once per _LINGER_S instead of being
# woken by each one: a wake-up per record made the writer thread take the GIL in the middle of
# every answer (at one request at a time it added ~40 µs to each). It is woken only when it went
# to sleep on an empty queue, and by `flush` / `close`.
_STOP = object()


_INT64 = 1 << 63


_ALL = operator.attrgetter(*COLUMNS)
_JSON_AT = [i for i, c in enumerate(COLUMNS) if c in JSON_COLUMNS]
_BOOL_AT = [i for i, c in enumerate(COLUMNS) if c in _BOOLS]
_INT_AT = [i for i, c in enumerate(COLUMNS) if _TYPES.get(c) == "INTEGER" and c not in _BOOLS]


# The columns that carry conversation text (each cut at 256,000 characters: `ledger.store_text`, shadow
# pairs); the rest of a row is small and bounded. What the memory bound counts besides records.
_TEXTS = operator.itemgetter(*(COLUMNS.index(c) for c in ("prompt", "answer", "shadow")))


def _text_chars(row: tuple[Any, ...]) -> int:
    return sum(map(len, filter(None, _TEXTS(row))))


def _row(rec: LedgerRecord) -> tuple[Any, ...]:
    # Runs in `submit`, on the request path: every field in one C call, then only the few that
    # need converting (this took a Python loop over every column before).
    out = list(_ALL(rec))
    for i in _INT_AT:
        v = out[i]
        if type(v) is int and not -_INT64 <= v < _INT64:
            out[i] = float(v)  # an absurd count from an upstream: SQLite integers are 64-bit, keep the row
    for i in _JSON_AT:
        v = out[i]
        out[i] = None if v is None else orjson.dumps(v, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    for i in _BOOL_AT:
        out[i] = int(bool(out[i]))
    return tuple(out)


def _record(row: sqlite3.Row) -> LedgerRecord:
    kw: dict[str, Any] = {}
    for c in COLUMNS:
        v = row[c]
        if c in JSON_COLUMNS:
            v = _json_column(row, c, v)
        elif c in _BOOLS:
            v = bool(v)
        kw[c] = v
    return LedgerRecord(**kw)


def _json_column(row: sqlite3.Row, c: str, v: Any) -> Any:
    """A JSON column's value; a damaged one (not JSON, or not the object/array this version writes: a row edited by
    hand, or by another tool) reads as empty, with a warning naming the row, so one bad row fails no report."""
    empty: Any = {} if c == "extra" else [] if c == "steps" else None
    if v is None:
        return empty
    try:
        out = orjson.loads(v)
    except orjson.JSONDecodeError:
        out = None
    array = c in _JSON_ARRAYS  # (steps, and the privacy crossings; extra and shadow are objects)
    if isinstance(out, list if array else dict):
        return out
    log.warning("ledger row %r: its %s column is not a JSON %s; read as empty", row["request_id"], c,
                "array" if array else "object")
    return empty


_JSON_ARRAYS = frozenset({"steps", "privacy"})


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """A ledger written by an older version gains the columns added since (empty for its old rows)."""
    have = {r[1] for r in db.execute("PRAGMA table_info(requests)")}
    for c in COLUMNS:
        if c not in have:
            db.execute(f"ALTER TABLE requests ADD COLUMN {c} {_TYPES.get(c, 'TEXT')}")


def _create_private(path: str) -> None:
    """Make the database file readable by its owner only before SQLite creates it (SQLite gives its
    -wal and -shm files the database file's mode): it holds costs, errors and stored prompts."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass  # an existing ledger keeps the mode its operator gave it


class Ledger:
    def __init__(self, path: str, journal: JournalConfig | None = None, *, max_queued: int = 10_000,
                 max_queued_chars: int = 64 << 20, keep_days: float | None = None,
                 max_rows: int | None = None) -> None:
        self.path = path
        self.retention = Retention(keep_days, max_rows)  # (ledger/retention.py: the writer deletes old rows)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _create_private(path)
        self._durable = bool(journal and journal.enabled and journal.fsync)
        self.ledger_id = self._initialise()
        self.journal: journal_mod.Journal | None = None
        self.recovered: journal_mod.ReplayReport | None = None  # what the start replayed
        self._unwritten = 0  # journaled records whose row could not be written
        if journal is not None and journal.enabled:
            jdir = journal_mod.journal_dir(path)
            self.recovered = journal_mod.replay(jdir, self.ledger_id, self._connect, _INSERT_NEW, _row)
            self.journal = journal_mod.Journal(jdir, self.ledger_id, fsync=journal.fsync,
                                               segment_bytes=journal.segment_bytes, max_bytes=journal.max_bytes)
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending = 0  # submitted, not yet written: in memory or in the journal only
        self.max_queued = max(1, max_queued)
        self._in_memory = 0  # records queued or in the writer's hands (at most max_queued)
        self.max_queued_chars = max(1, max_queued_chars)
        self._chars = 0  # their conversation text (at most max_queued_chars, or one record's)
        self._spilled = 0  # records in the journal only, not yet read back by the writer
        self._room = self.max_queued  # 0 while any wait in the journal only: the next go there too, in order
        self._spill_at = (0, 0)  # where the writer reads them back from (Journal.read)
        self._spilled_total = 0
        self._dropped_total = 0
        self._burst_dropped = 0  # dropped since the writer last caught up
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._asleep = True  # the writer waits for `_wake` with no deadline (guarded by _cond)
        self._closed = False
        # Set by the gateway when privacy is configured (tierwise.privacy.audit.seal_record):
        # protected values out of every record's text, crossings into its `privacy` column.
        self.seal: Any = None
        self._writer = threading.Thread(target=self._write_loop, name="tierwise-ledger", daemon=True)
        self._writer.start()

    @classmethod
    def open(cls, path: str, journal: JournalConfig | None = None, *, max_queued: int = 10_000,
             max_queued_chars: int = 64 << 20, keep_days: float | None = None,
             max_rows: int | None = None) -> Ledger:
        """The ledger at `path`; one that cannot be created or opened is a config error naming the path."""
        from tierwise.errors import ConfigError

        try:
            return cls(path, journal, max_queued=max_queued, max_queued_chars=max_queued_chars,
                       keep_days=keep_days, max_rows=max_rows)
        except (OSError, sqlite3.Error) as e:
            why = str(getattr(e, "strerror", None) or e)
            where = getattr(e, "filename", None)  # e.g. the folder on the way that is a file
            if where and where != path:
                why += f" ({where})"
            raise ConfigError(f"cannot open the ledger at {path}: {why}; point ledger.path at a tierwise ledger "
                              "or a new file in a writable folder (or ledger.enabled: false)",
                              path="ledger.path") from None

    def _initialise(self) -> str:
        """WAL mode, the schema and the ledger's id; its id (several processes may open a new ledger at once)."""
        def step() -> str:
            with closing(self._connect()) as db, db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
                _add_missing_columns(db)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('ledger_id', ?)", (secrets.token_hex(6),))
                return str(db.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()[0])
        return retry_locked(step)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        db.row_factory = sqlite3.Row
        # FULL when the journal fsyncs: a journal line is dropped only after its row is durable.
        db.execute("PRAGMA synchronous=FULL" if self._durable else "PRAGMA synchronous=NORMAL")
        return db

    # ------------------------------------------------------------------ writing

    def submit(self, rec: LedgerRecord) -> None:
        """Queue a record for writing; never blocks."""
        # Scrubbed first: nothing secret reaches the disk, the journal included.
        if self.seal is not None:
            self.seal(rec)
        scrub_record(rec)
        try:
            row = _row(rec)  # here, once: the journal line and the writer's insert share it
        except Exception as e:
            log.error("ledger: could not write record %s: %s", rec.request_id, type(e).__name__)
            return
        with self._cond:  # with close(): a record is either queued before the stop or refused
            if self._closed:
                log.warning("ledger is closed; record %s not written", rec.request_id)
                return
            chars = sum(map(len, filter(None, _TEXTS(row))))  # as _text_chars, inline: the request path
            if self._in_memory >= self._room or (self._chars + chars > self.max_queued_chars and self._in_memory):
                self._overflow(row)
                return
            # The journal line is written before the caller sends the answer's end: a crash after
            # that cannot lose the row. 0: not journaled.
            seq = self.journal.append(row) if self.journal is not None else 0
            self._pending += 1
            self._in_memory += 1
            self._chars += chars
            self._q.put((row, seq))
            if self._asleep:
                self._asleep = False
                self._wake.set()

    def _overflow(self, row: tuple[Any, ...]) -> None:
        """The queue is full (or records already wait in the journal): journal only, else drop (under _cond)."""
        if self.journal is not None:
            start = None if self._spilled else [0, 0]  # the first: where the writer starts reading back
            seq = self.journal.append(row, start)
            if seq:
                if start is not None:
                    self._spill_at = (start[0], start[1])
                    self._room = 0
                    log.warning("ledger: %d records wait for the writer (ledger.max_queued); further records "
                                "spill to the journal until it catches up", self._in_memory)
                self._spilled += 1
                self._spilled_total += 1
                self._pending += 1
                if self._asleep:
                    self._asleep = False
                    self._wake.set()
                return
        self._dropped_total += 1
        self._burst_dropped += 1
        if self._burst_dropped == 1:
            why = "the journal cannot take them" if self.journal is not None else "ledger.journal is off"
            log.error("ledger: %d records wait for the writer (ledger.max_queued) and %s: dropping records "
                      "until it catches up (counted: tierwise_ledger_records_dropped)", self._in_memory, why)

    def _read_spilled(self, db: sqlite3.Connection) -> bool:
        """Write the next batch of records that wait in the journal only; False when there is none."""
        with self._cond:
            count = min(self._spilled, _BATCH, self.max_queued)
            at = self._spill_at
        if not count or self.journal is None:
            return False
        batch, lines, at = self.journal.read(at, count, self.max_queued_chars)
        chars = sum(_text_chars(row) for row, _ in batch)
        with self._cond:
            self._spill_at = at
            self._spilled -= lines
            self._in_memory += len(batch)
            self._chars += chars
            # Lines that did not decode stay in the journal, and so its files at close, for the next start.
            self._pending -= lines - len(batch)
            self._unwritten += lines - len(batch)
            if not lines:  # cannot happen: the journal holds every spilled line
                log.error("ledger: %d records to read back from the journal were not there", self._spilled)
                self._pending -= self._spilled
                self._unwritten += self._spilled
                self._spilled = 0
            if not self._spilled:
                self._room = self.max_queued
                log.warning("ledger: the writer caught up with the journal (%d records spilled so far)",
                            self._spilled_total)
            self._cond.notify_all()
        if batch:
            self._write(db, batch)
        return True

    def _write_loop(self) -> None:
        db = self._connect()
        try:
            while True:
                # Asleep: until a record (or flush/close) wakes it; awake: one look per linger.
                self._wake.wait(None if self._asleep else _LINGER_S)
                self._wake.clear()
                stop = found = False
                batch: list[tuple[tuple[Any, ...], int]] = []
                while not stop:
                    try:
                        item = self._q.get_nowait()
                    except queue.Empty:
                        item = None
                    if item is _STOP:
                        stop = True
                    elif item is not None:
                        batch.append(item)
                    if batch and (item is None or stop or len(batch) >= _BATCH):
                        found = True
                        try:
                            self._write(db, batch)
                        except Exception:  # the writer must outlive any one batch
                            log.exception("ledger: could not write a batch of %d records", len(batch))
                        batch = []
                    if item is None:
                        break
                if stop:
                    return
                # The queue is empty: now the records that waited in the journal only, oldest first.
                while self._read_spilled(db):
                    found = True
                if found and self.retention.due():
                    self.retention.prune(db)
                if not found:
                    with self._cond:  # nothing came for a whole linger: sleep until submit wakes it
                        if self._q.empty() and not self._spilled:
                            self._asleep = True
        finally:
            db.close()

    def _write(self, db: sqlite3.Connection, batch: list[tuple[tuple[Any, ...], int]]) -> None:
        chars = sum(_text_chars(row) for row, _ in batch)
        failed: set[int] = set()  # indexes in the batch whose row is not in the database
        try:
            with db:
                db.executemany(_INSERT, [row for row, _ in batch])
        except Exception:
            # One bad row must not lose the rest of the batch: retry row by row.
            for i, (row, _) in enumerate(batch):
                try:
                    with db:
                        db.execute(_INSERT, row)
                except Exception as e:
                    failed.add(i)
                    log.error("ledger: could not write record %s: %s", row[0], type(e).__name__)
        finally:
            if self.journal is not None:
                # Lines of committed rows can go; a row that failed (a locked or full disk) keeps
                # its line, so the next start retries it.
                self.journal.committed([seq for i, (_, seq) in enumerate(batch) if i not in failed])
                self._unwritten += len(failed)
            with self._cond:
                self._pending -= len(batch)
                self._in_memory -= len(batch)
                self._chars -= chars
                if self._burst_dropped and not self._in_memory:
                    log.warning("ledger: the writer caught up; %d records were dropped in this burst (%d in all)",
                                self._burst_dropped, self._dropped_total)
                    self._burst_dropped = 0
                self._cond.notify_all()

    def backlog(self) -> dict[str, int]:
        """What waits for the writer, and what overflowed since the start (/health, /metrics)."""
        j = self.journal
        with self._cond:
            return {"in_memory": self._in_memory, "max_in_memory": self.max_queued,
                    "text_chars_in_memory": self._chars, "max_text_chars_in_memory": self.max_queued_chars,
                    "in_journal_only": self._spilled, "spilled": self._spilled_total, "dropped": self._dropped_total,
                    "journal_bytes": j.bytes if j is not None else 0,
                    "max_journal_bytes": j.max_bytes if j is not None else 0,
                    "not_journaled": j.refused if j is not None else 0}

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every record submitted so far is written. True if it was."""
        self._wake.set()  # write now, not at the next look
        with self._cond:
            return self._cond.wait_for(lambda: self._pending <= 0, timeout=timeout)

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        with self._cond:
            self._closed = True
            self._q.put(_STOP)
            self._wake.set()
        self._writer.join(timeout=30)
        if self.journal is not None:
            done = self._pending <= 0 and self._unwritten == 0 and not self._writer.is_alive()
            self.journal.close(all_committed=done)

    def annotate(self, request_id: str, **extra: Any) -> bool:
        """Merge `extra` (evaluations, labels, scores) into a stored record's `extra`, cleaned as `submit` cleans
        a record (protected values with privacy configured, the gateway's secrets): feedback reasons are a
        client's text."""
        extra = self._cleaned(request_id, extra)
        return self._change_extra(request_id, lambda old: {**old, **extra}) is not None

    def append_extra(self, request_id: str, name: str, item: Any, *, keep: int) -> list[Any] | None:
        """Append `item` (cleaned as `annotate` cleans) to the list `extra[name]` of a stored record, keeping the
        newest `keep`; the list as it was before, or None when there is no such record. Read and write are one
        transaction: appends made at the same moment (a client's ratings sent in parallel) all land, and each
        sees the others' items before its own."""
        item = self._cleaned(request_id, {name: [item]})[name][0]
        before: list[Any] = []

        def change(old: dict[str, Any]) -> dict[str, Any]:
            nonlocal before
            v = old.get(name)
            before = list(v) if isinstance(v, list) else []
            return {**old, name: [*before, item][-keep:]}

        return None if self._change_extra(request_id, change) is None else before

    def _cleaned(self, request_id: str, extra: dict[str, Any]) -> dict[str, Any]:
        probe = LedgerRecord(request_id=request_id, ts=0.0, route="", extra=extra)
        if self.seal is not None:
            self.seal(probe)
        return scrub_record(probe).extra or {}

    def _change_extra(self, request_id: str, change: Any) -> dict[str, Any] | None:
        """`extra` = change(extra) for a stored record, read and written under SQLite's write lock (a
        read-then-write in two steps lost one of two changes made at once); None when there is no such record."""
        self.flush()

        def step() -> dict[str, Any] | None:
            with closing(self._connect()) as db:
                db.isolation_level = None  # the transaction is this one, begun before the read
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute("SELECT request_id, extra FROM requests WHERE request_id = ?",
                                     (request_id,)).fetchone()
                    if row is None:
                        db.execute("ROLLBACK")
                        return None
                    merged: dict[str, Any] = change(_json_column(row, "extra", row["extra"]))
                    db.execute("UPDATE requests SET extra = ? WHERE request_id = ?",
                               (orjson.dumps(merged, default=str).decode(), request_id))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                return merged

        return retry_locked(step)

    # ------------------------------------------------------------------ reading

    def get(self, request_id: str) -> LedgerRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return _record(row) if row else None

    def query(
        self,
        *,
        route: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[LedgerRecord]:
        """Records in time order, optionally filtered."""
        where, args = _filters(route=route, kind=kind, since=since, until=until)
        sql = f"SELECT * FROM requests{where} ORDER BY ts"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._connect() as db:
            return [_record(r) for r in db.execute(sql, args)]

    def scan(self, *, route: str | None = None, kind: str | None = None,
             since: float | None = None) -> Iterator[LedgerRecord]:
        """`query`'s records one at a time, for reports that read the whole ledger: `eval --ledger` on a 617 MB
        ledger held every row at once (733 MB resident) to keep the 600 judged ones."""
        where, args = _filters(route=route, kind=kind, since=since)
        with closing(self._connect()) as db:
            for r in db.execute(f"SELECT * FROM requests{where} ORDER BY ts", args):
                yield _record(r)

    def recent(self, *, limit: int = 20, route: str | None = None, model: str | None = None,
               status: str | None = None, since: float | None = None) -> list[LedgerRecord]:
        """The newest requests first (chat requests and ensemble runs, not shadow runs).

        `model` matches the name the client asked for, the model that answered or its upstream
        id; `status` is `ok` (< 400), `error` (>= 400) or one HTTP status."""
        where = ["kind IS NOT 'shadow'"]
        args: list[Any] = []
        if route is not None:
            where.append("route = ?")
            args.append(route)
        if model is not None:
            where.append("(requested_model = ? OR decision = ? OR model = ?)")
            args += [model, model, model]
        if status is not None:
            if status == "ok":
                where.append("status < 400")
            elif status == "error":
                where.append("status >= 400")
            else:
                where.append("status = ?")
                args.append(int(status))
        if since is not None:
            where.append("ts >= ?")
            args.append(since)
        args.append(limit)
        sql = f"SELECT * FROM requests WHERE {' AND '.join(where)} ORDER BY ts DESC LIMIT ?"
        with self._connect() as db:
            return [_record(r) for r in db.execute(sql, args)]

    def count(self, **filters: Any) -> int:
        where, args = _filters(**filters)
        with self._connect() as db:
            return int(db.execute(f"SELECT COUNT(*) FROM requests{where}", args).fetchone()[0])

    def iter_rows(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Read-only SQL for reports."""
        with self._connect() as db:
            return list(db.execute(sql, tuple(args)))


def _filters(**f: Any) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for key, op in (("route", "="), ("kind", "="), ("since", ">="), ("until", "<")):
        v = f.get(key)
        if v is not None:
            col = "ts" if key in ("since", "until") else key
            clauses.append(f"{col} {op} ?")
            args.append(v)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args
