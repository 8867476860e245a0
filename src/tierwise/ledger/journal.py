"""The ledger's crash journal: every record on disk before its client sees the end of the answer.

The ledger writes rows to SQLite off the request path, in batches; a record waits there up to
the batch linger, so a process that dies (`kill -9`, the OOM killer, a segfault) would lose the
rows of answers it had already sent. `Ledger.submit` therefore first appends the record as one
JSON line to this journal: one `os.write` of a whole line to an `O_APPEND` descriptor, no fsync.
The bytes are then in the kernel's page cache, which outlives the process. Once the writer has
committed a record's row, its line is no longer needed: a segment whose lines are all committed
is truncated (the current one) or deleted (an older one), so the journal stays about one
segment long. At start, `replay` inserts the records of journals whose process is gone into
the ledger, keyed by request id (`INSERT OR IGNORE`: a row already there is kept as it is).

Files: `<ledger>.journal.d/<ledger id>-<pid>-<token>-<seq>.jsonl`. Each process writes its own
files (so `serve` with several worker processes has one journal each) and holds an exclusive
`flock` on each while it lives; the kernel drops the lock when the process dies, which is how
`replay` tells a dead process's journal from a live sibling's. The ledger id (kept in the
database) is in the name, so a journal left from a different ledger (a deleted or replaced
database file) is never replayed into this one.

What survives what: a process crash loses nothing journaled. A power loss or kernel crash
loses what the OS had not yet written back (by default up to ~30 s), both journal lines and
SQLite commits (the ledger runs WAL with `synchronous=NORMAL`). With `fsync: true` each line is
flushed to the device (`fdatasync`) before the answer's end is sent, and the ledger commits
with `synchronous=FULL` so a line is dropped only after its row is durable: nothing answered
is lost then, at the cost of one device flush per request on the event loop.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tierwise.ledger.records import COLUMNS, LedgerRecord

log = logging.getLogger("tierwise.ledger")

SUFFIX = ".jsonl"
NEW = ".new"  # a file being created
_DUMP_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
_INT64 = 1 << 63
_REQUIRED = ("request_id", "ts", "route")


def journal_dir(ledger_path: str) -> Path:
    return Path(ledger_path + ".journal.d")


def encode(rec: LedgerRecord) -> bytes:
    """One journal line. orjson writes the dataclass directly (a few microseconds)."""
    try:
        return orjson.dumps(rec, default=str, option=_DUMP_OPTS)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits from an upstream: keep the line, as the ledger keeps the row.
        d = {c: _fit(getattr(rec, c)) for c in COLUMNS}
        return orjson.dumps(d, default=str, option=_DUMP_OPTS)


def _fit(v: Any) -> Any:
    if type(v) is int and not -_INT64 <= v < _INT64:
        return float(v)
    if isinstance(v, dict):
        return {k: _fit(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_fit(x) for x in v]
    return v


def decode(line: bytes) -> LedgerRecord | None:
    """The record of one line, or None for a line that is not one (torn by a crash, foreign)."""
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(d) is not dict or any(k not in d for k in _REQUIRED):
        return None
    try:  # fields this version does not know are dropped, missing ones get their defaults
        return LedgerRecord(**{k: v for k, v in d.items() if k in _FIELDS})
    except TypeError:
        return None


_FIELDS = frozenset(COLUMNS)


class _Segment:
    __slots__ = ("path", "fd", "size", "open_lines")

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd, self.size, self.open_lines = path, fd, 0, 0


class Journal:
    """This process's journal of records submitted but not yet committed to the ledger.

    `append` runs on the request path (the event loop): one lock, one `os.write`. `committed`
    runs on the ledger's writer thread after each commit. Thread-safe.
    """

    def __init__(self, directory: Path, ledger_id: str, *, fsync: bool = False,
                 segment_bytes: int = 4 << 20) -> None:
        self.dir = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._prefix = f"{ledger_id}-{os.getpid()}-{secrets.token_hex(4)}-"
        self._seq = 0
        self._lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}
        self._torn = False  # the last append failed part-way: start the next one on a new line
        self._failures = 0
        self._closed = False
        self.dir.mkdir(parents=True, exist_ok=True)
        self._current = self._open_segment()

    def _open_segment(self) -> _Segment:
        for attempt in range(5):
            self._seq += 1
            path = self.dir / f"{self._prefix}{self._seq:06d}{SUFFIX}"
            # Locked under a name replay does not read, then renamed: a replay starting in
            # another process can never take a new file for a dead process's and delete it.
            new = path.with_name(path.name + NEW)
            fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while this process lives
                os.rename(new, path)
            except (BlockingIOError, FileNotFoundError):
                # Another process's clean-up of half-made files took this one before the lock: next name.
                os.close(fd)
                if attempt == 4:
                    raise
                continue
            break
        if self.fsync:
            _fsync_dir(self.dir)  # the new name itself must survive a power loss
        seg = _Segment(path, fd)
        self._segments[self._seq] = seg
        return seg

    def append(self, rec: LedgerRecord) -> int:
        """Write the record's line; return its segment number (0: not journaled) for `committed`."""
        line = encode(rec)
        with self._lock:
            if self._closed:
                return 0
            seg = self._current
            if seg.size >= self.segment_bytes:
                try:
                    seg = self._current = self._open_segment()
                except OSError as e:
                    self._failed(e)
            if self._torn:
                line = b"\n" + line
            try:
                _write_all(seg.fd, line)
                if self.fsync:
                    os.fdatasync(seg.fd)
            except OSError as e:
                self._torn = True
                self._failed(e)
                return 0
            self._torn = False
            seg.size += len(line)
            seg.open_lines += 1
            return self._seq

    def _failed(self, e: OSError) -> None:
        # The request goes on (the ledger still gets the row unless the process dies first);
        # say so, without a line per request when the disk is full.
        self._failures += 1
        if self._failures in (1, 10, 100) or self._failures % 1000 == 0:
            log.error("ledger journal: could not write %s (%s); %d failures so far: rows of answers sent "
                      "until the writer commits are lost if the process crashes", self.dir,
                      e.strerror or type(e).__name__, self._failures)

    def committed(self, seqs: Iterable[int]) -> None:
        """The rows of these appends are committed: drop segments that hold nothing else."""
        with self._lock:
            for s in seqs:
                seg = self._segments.get(s)
                if seg is not None:
                    seg.open_lines -= 1
            for s, seg in list(self._segments.items()):
                if seg.open_lines > 0:
                    continue
                if seg is self._current:
                    if seg.size:
                        try:
                            os.ftruncate(seg.fd, 0)  # O_APPEND: the next line goes to offset 0
                            seg.size = 0
                        except OSError as e:
                            self._failed(e)
                else:
                    self._drop(s, seg)

    def _drop(self, s: int, seg: _Segment) -> None:
        try:
            seg.path.unlink(missing_ok=True)
        except OSError as e:
            self._failed(e)
        os.close(seg.fd)
        del self._segments[s]

    def close(self, *, all_committed: bool) -> None:
        """Stop journaling. With every row committed (a clean close) the files go; else they stay
        for the next start to replay."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for s, seg in list(self._segments.items()):
                if all_committed:
                    self._drop(s, seg)
                else:
                    os.close(seg.fd)
            self._segments.clear()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_if_dead(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except BlockingIOError:
        pass  # being created by a live process
    finally:
        os.close(fd)


@dataclass
class ReplayReport:
    files: int = 0
    records: int = 0
    inserted: int = 0
    skipped_lines: int = 0  # torn or foreign lines
    live: int = 0  # journals of processes still running: not touched
    foreign: int = 0  # journals of another ledger: not touched


def replay(directory: Path, ledger_id: str, connect: Callable[[], sqlite3.Connection], insert_sql: str,
           to_row: Callable[[LedgerRecord], tuple[Any, ...]]) -> ReplayReport:
    """Insert the records of every dead process's journal into the ledger, then delete the files.

    `insert_sql` must not overwrite (INSERT OR IGNORE): a row the writer committed before the
    crash stays as it is (annotations included), and replaying twice changes nothing.
    """
    rep = ReplayReport()
    if not directory.is_dir():
        return rep
    for path in directory.glob("*" + SUFFIX + NEW):  # a process died while creating it: empty
        _remove_if_dead(path)
    for path in sorted(directory.glob("*" + SUFFIX)):
        if not path.name.startswith(ledger_id + "-"):
            rep.foreign += 1
            log.warning("ledger journal %s belongs to a different ledger; not replayed (delete it, or open "
                        "the ledger it belongs to)", path)
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # another process replayed it a moment ago
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                rep.live += 1  # its process is alive and will commit these rows itself
                continue
            if not path.exists():
                continue  # replayed and removed by another process while we waited for the lock
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read()
            rows = []
            for line in data.split(b"\n"):
                if not line:
                    continue
                rec = decode(line)
                if rec is None:
                    rep.skipped_lines += 1
                    continue
                try:
                    rows.append(to_row(rec))
                except Exception:
                    rep.skipped_lines += 1
            rep.files += 1
            rep.records += len(rows)
            db = connect()
            try:
                with db:
                    before = db.total_changes
                    db.executemany(insert_sql, rows)
                    rep.inserted += db.total_changes - before
            finally:
                db.close()
            path.unlink(missing_ok=True)  # only after the rows are committed
        finally:
            os.close(fd)
    if rep.files:
        log.warning("ledger journal: recovered %d rows of %d journaled records from %d journal(s) of stopped "
                    "processes (%d torn or unreadable lines skipped)", rep.inserted, rep.records, rep.files,
                    rep.skipped_lines)
    return rep
