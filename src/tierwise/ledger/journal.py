"""The ledger's crash journal: every record on disk before its client sees the end of the answer.

The ledger writes rows to SQLite off the request path, in batches; a record waits there up to
the batch linger, so a process that dies (`kill -9`, the OOM killer, a segfault) would lose the
rows of answers it had already sent. `Ledger.submit` therefore first appends the row as one
JSON line to this journal, before the caller sends the answer's end: a copy into a shared
memory mapping of the journal file, no system call, no fsync. The bytes are then in the
kernel's page cache, which outlives the process. Once the writer has committed a row, its line
is no longer needed: when every line of the current file is committed the lines are cleared,
and older files (a file is full at `segment_bytes`) are deleted, so the journal stays about one
file long. At start, `replay` inserts the records of journals whose process is gone into the
ledger, keyed by request id (`INSERT OR IGNORE`: a row already there is kept as it is).

Files: `<ledger>.journal.d/<ledger id>-<pid>-<token>-<seq>.jsonl`: a header line naming the
columns, one JSON array per row, then zeros. Each
process writes its own files (so `serve` with several worker processes has one journal each)
and holds an exclusive `flock` on each while it lives; the kernel drops the lock when the
process dies, which is how `replay` tells a dead process's journal from a live sibling's. The
ledger id (kept in the database) is in the name, so a journal left from a different ledger (a
deleted or replaced database file) is never replayed into this one.

What survives what: a process crash loses nothing journaled. A power loss or kernel crash
loses what the OS had not yet written back (by default up to ~30 s), both journal lines and
SQLite commits (the ledger runs WAL with `synchronous=NORMAL`). With `fsync: true` each line's
page is flushed to the device (`msync`) before the answer's end is sent, and the ledger commits
with `synchronous=FULL` so a line is cleared only after its row is durable: nothing answered is
lost then, at the cost of one device flush per request on the event loop.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tierwise.ledger.records import COLUMNS, JSON_COLUMNS, LedgerRecord

log = logging.getLogger("tierwise.ledger")

SUFFIX = ".jsonl"
NEW = ".new"  # a file being created
_REQUIRED = ("request_id", "ts", "route")
_FIELDS = frozenset(COLUMNS)
_BOOLS = ("stream", "tokens_estimated")
_ZEROS = bytes(64 << 10)
_RETRY_S = 1.0  # after a journal file could not be made (a full disk), wait this long to try again


def journal_dir(ledger_path: str) -> Path:
    return Path(ledger_path + ".journal.d")


def encode_row(row: tuple[Any, ...]) -> bytes:
    """One journal line from a ledger row (the values the writer will insert, JSON columns
    already as text): a JSON array, in the order of the file's header (~1-2 µs; an object with
    the column names took five times as long)."""
    return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)


# The first line of every file: what the arrays after it hold, so a journal written by another
# version of tierwise (other columns) is still read by name.
HEADER = orjson.dumps({"tierwise_journal": 1, "columns": COLUMNS}, option=orjson.OPT_APPEND_NEWLINE)


def read_header(line: bytes) -> list[str] | None:
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    cols = d.get("columns") if type(d) is dict and d.get("tierwise_journal") == 1 else None
    return cols if isinstance(cols, list) and all(isinstance(c, str) for c in cols) else None


def decode(line: bytes, columns: list[str] = COLUMNS) -> LedgerRecord | None:
    """The record of one line, or None for a line that is not one (torn by a crash, foreign)."""
    try:
        values = orjson.loads(line)
        if type(values) is not list or len(values) != len(columns):
            return None
        d = dict(zip(columns, values, strict=True))
        if any(d.get(k) is None for k in _REQUIRED):
            return None
        for c in JSON_COLUMNS:
            if isinstance(d.get(c), str):
                d[c] = orjson.loads(d[c])
    except orjson.JSONDecodeError:
        return None
    for c in _BOOLS:
        if c in d:
            d[c] = bool(d[c])
    for c in ("extra", "steps"):  # NULL in a row, a default in a record
        if d.get(c) is None:
            d.pop(c, None)
    try:  # fields this version does not know are dropped, missing ones get their defaults
        return LedgerRecord(**{k: v for k, v in d.items() if k in _FIELDS})
    except TypeError:
        return None


class _Segment:
    __slots__ = ("seq", "path", "fd", "mm", "size", "used", "open_lines")

    def __init__(self, seq: int, path: Path, fd: int, mm: mmap.mmap, size: int) -> None:
        self.seq, self.path, self.fd, self.mm, self.size = seq, path, fd, mm, size
        self.used = len(HEADER)  # the header and the lines; the rest of the file is zeros
        self.open_lines = 0  # lines whose rows are not committed yet

    def close(self) -> None:
        self.mm.close()
        os.close(self.fd)


class Journal:
    """This process's journal of records submitted but not yet committed to the ledger.

    Each file is made at its full size up front (`posix_fallocate`, so a full disk shows when
    the file is made, not as a fault later) and mapped into memory (`MAP_SHARED`): `append`,
    on the request path, copies the line into the mapping under one lock, with no system call.
    The mapped pages are the file's pages in the kernel's page cache, so they outlive the
    process like a `write(2)` would; `os.write` here cost ~15 µs of CPU per line on ext4 (the
    inode's size and times change with every append) and released the GIL to the ledger's
    writer thread for up to the 5 ms switch interval. `committed` runs on the writer thread
    after each commit. Thread-safe.
    """

    def __init__(self, directory: Path, ledger_id: str, *, fsync: bool = False,
                 segment_bytes: int = 4 << 20, max_bytes: int = 256 << 20) -> None:
        self.dir = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        # The files' disk use at most (the first file is always made): past it a line is refused, as on a full
        # disk, and the ledger drops and counts a record that had nowhere else to wait (ledger/store.py).
        self.max_bytes = max_bytes
        self.bytes = 0  # the files' size now
        self.refused = 0  # lines refused since the start: the bound reached, or the disk
        self._at_bound = False  # said so, until a file can be made again
        self._prefix = f"{ledger_id}-{os.getpid()}-{secrets.token_hex(4)}-"
        self._seq = 0
        self._lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}
        self._failures = 0
        self._retry_at = 0.0
        self._closed = False
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._current: _Segment | None = self._open_segment(segment_bytes)

    def _open_segment(self, size: int) -> _Segment:
        for attempt in range(5):
            self._seq += 1
            path = self.dir / f"{self._prefix}{self._seq:06d}{SUFFIX}"
            # Locked under a name replay does not read, then renamed: a replay starting in
            # another process can never take a new file for a dead process's and delete it.
            new = path.with_name(path.name + NEW)
            fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while this process lives
                _allocate(fd, size)
                mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                mm[: len(HEADER)] = HEADER
                os.rename(new, path)
            except (BlockingIOError, FileNotFoundError):
                # Another process's clean-up of half-made files took this one first: next name.
                os.close(fd)
                if attempt == 4:
                    raise
                continue
            except BaseException:
                os.close(fd)
                new.unlink(missing_ok=True)
                raise
            break
        if self.fsync:  # the file's size and blocks, and its name, must survive a power loss too
            os.fsync(fd)
            _fsync_dir(self.dir)
        seg = _Segment(self._seq, path, fd, mm, size)
        self._segments[seg.seq] = seg
        self.bytes += size
        if self._at_bound:
            self._at_bound = False
            log.warning("ledger journal: back under its bound (%d bytes); %d lines refused so far", self.bytes,
                        self.refused)
        return seg

    def append(self, row: tuple[Any, ...], at: list[int] | None = None) -> int:
        """Journal a ledger row; return its segment number for `committed` (0: not journaled). With `at`,
        also where the line starts (segment number, offset), for `read`."""
        line = encode_row(row)
        n = len(line)
        with self._lock:
            if self._closed:
                return 0
            seg = self._current
            if seg is None or seg.used + n > seg.size:
                now = time.monotonic()
                if now < self._retry_at:
                    self.refused += 1
                    return 0
                size = max(self.segment_bytes, len(HEADER) + n)  # a record larger than a file gets one its size
                if self.bytes + size > self.max_bytes:
                    self.refused += 1
                    if not self._at_bound:
                        self._at_bound = True
                        log.error("ledger journal: its files hold %d bytes, a new one would pass ledger.journal."
                                  "max_bytes (%d); records are not journaled until the writer commits the ones "
                                  "there (counted: tierwise_ledger_records_not_journaled_total)", self.bytes,
                                  self.max_bytes)
                    return 0
                try:
                    seg = self._current = self._open_segment(size)
                except OSError as e:
                    self._retry_at = now + _RETRY_S
                    self.refused += 1
                    self._failed(e)
                    return 0
            off = seg.used
            seg.mm[off:off + n] = line
            seg.used = off + n
            seg.open_lines += 1
            if at is not None:
                at[:] = (seg.seq, off)
            if self.fsync:
                page = off - off % mmap.PAGESIZE
                try:
                    seg.mm.flush(page, off + n - page)
                except OSError as e:
                    self._failed(e)
            return seg.seq

    def read(self, at: tuple[int, int], count: int,
             max_bytes: int = 1 << 62) -> tuple[list[tuple[tuple[Any, ...], int]], int, tuple[int, int]]:
        """Up to `count` rows appended from `at` on, each with its segment number (for `committed`), how many
        lines were read, and the position after them: how the ledger's writer reads back the records that
        waited in the journal only (its queue was full). Lines are whole (an append writes its line before
        it moves `used`); a line that does not decode (not one of this process's) is skipped and logged.
        Past `max_bytes` of lines it stops (after one line at least)."""
        seq, off = at
        raw: list[tuple[bytes, int]] = []
        size = 0
        with self._lock:  # copy only; decoding happens outside the lock the request path takes
            while len(raw) < count and (not raw or size < max_bytes):
                seg = self._segments.get(seq)
                if seg is None or off >= seg.used:
                    later = [s for s in self._segments if s > seq]
                    if not later:
                        break
                    seq, off = min(later), len(HEADER)
                    continue
                end = seg.mm.find(b"\n", off, seg.used)
                if end < 0:
                    break
                if raw and size + end - off > max_bytes:
                    break
                raw.append((seg.mm[off:end], seq))
                size += end - off
                off = end + 1
        out = []
        for line, s in raw:
            try:
                out.append((tuple(orjson.loads(line)), s))
            except orjson.JSONDecodeError:
                log.error("ledger journal: a line of %s could not be read back; it stays for the next start",
                          self.dir)
        return out, len(raw), (seq, off)

    def _failed(self, e: OSError) -> None:
        # The request goes on (the ledger still gets the row unless the process dies first);
        # say so, without a line per request when the disk is full.
        self._failures += 1
        if self._failures in (1, 10, 100) or self._failures % 1000 == 0:
            log.error("ledger journal: could not write %s (%s); %d failures so far: rows of answers sent "
                      "until the writer commits are lost if the process crashes", self.dir,
                      e.strerror or type(e).__name__, self._failures)

    def committed(self, seqs: Iterable[int]) -> None:
        """The rows of these appends are committed: drop lines no longer needed."""
        with self._lock:
            for s in seqs:
                seg = self._segments.get(s)
                if seg is not None:
                    seg.open_lines -= 1
            for seg in list(self._segments.values()):
                if seg.open_lines > 0:
                    continue
                if seg is self._current:
                    # Zeroed, not truncated: the file keeps its blocks, and replay reads up to the zeros.
                    for off in range(len(HEADER), seg.used, len(_ZEROS)):
                        end = min(seg.used, off + len(_ZEROS))
                        seg.mm[off:end] = _ZEROS[: end - off]
                    seg.used = len(HEADER)
                else:
                    self._drop(seg)

    def _drop(self, seg: _Segment) -> None:
        try:
            seg.path.unlink(missing_ok=True)
        except OSError as e:
            self._failed(e)
        seg.close()
        del self._segments[seg.seq]
        self.bytes -= seg.size

    def close(self, *, all_committed: bool) -> None:
        """Stop journaling. With every row committed (a clean close) the files go; else they stay
        for the next start to replay."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for seg in list(self._segments.values()):
                if all_committed:
                    self._drop(seg)
                else:
                    seg.close()
            self._segments.clear()
            self._current = None


def _allocate(fd: int, size: int) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        os.ftruncate(fd, size)  # a filesystem without fallocate: a sparse file


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
            # Only regular files this user made: not a link out (read, then deleted), not a FIFO
            # or a device planted in the folder (an open or read that never ends).
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            continue  # another process replayed it a moment ago
        except OSError as e:
            rep.foreign += 1
            log.warning("ledger journal %s cannot be opened (%s); not replayed", path, e.strerror)
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                rep.foreign += 1
                log.warning("ledger journal %s is not a regular file of this user; not replayed", path)
                continue
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
            head, _, body = data.rstrip(b"\0").partition(b"\n")
            columns = read_header(head)
            for line in body.split(b"\n"):
                line = line.strip(b"\0")  # zeros: never written, or cleared after a commit
                if not line:
                    continue
                rec = decode(line, columns) if columns is not None else None
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
        (log.warning if rep.inserted else log.info)("ledger journal: recovered %d rows of %d journaled records from %d journal(s) of stopped "
                    "processes (%d torn or unreadable lines skipped)", rep.inserted, rep.records, rep.files,
                    rep.skipped_lines)
    return rep
