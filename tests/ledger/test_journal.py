"""The ledger's crash journal: what a killed process leaves behind is replayed once, into the
right ledger, never from a live process, and the journal does not grow without bound."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

from tests.ledger.test_store import rec
from tierwise.config import JournalConfig
from tierwise.ledger import journal
from tierwise.ledger.records import COLUMNS
from tierwise.ledger.store import Ledger, _row

# A process that journals `n` records with its writer stalled (as if the batch had not come
# due yet), says "ready", then dies by SIGKILL or waits to be killed.
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from tests.ledger.test_store import rec
    from tierwise.config import JournalConfig
    from tierwise.ledger.store import Ledger
    Ledger._write = lambda self, db, batch: time.sleep(1e9)
    path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    led = Ledger.open(path, JournalConfig())
    for i in range(n):
        led.submit(rec(i, extra={"from": "journal"}))
    print("ready", flush=True)
    if mode == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(1e9)
""")


def child(path: Path, n: int, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(n), mode], stdout=subprocess.PIPE, text=True,
                         env=env)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    if mode == "die":
        assert p.wait(timeout=30) == -signal.SIGKILL
    return p


def files(path: Path) -> list[Path]:
    return sorted(journal.journal_dir(str(path)).glob("*.jsonl"))


def test_killed_process_rows_are_replayed_once_and_committed_rows_win(tmp_path):
    path = tmp_path / "l.db"
    led = Ledger.open(str(path), JournalConfig())
    for i in range(10):
        led.submit(rec(i))
    led.flush()
    assert led.annotate("req_0", label="kept")
    led.close()
    assert files(path) == []  # a clean close leaves no journal

    child(path, 500, "die")
    assert len(files(path)) == 1
    again = Ledger.open(str(path), JournalConfig())
    assert again.recovered is not None
    assert (again.recovered.records, again.recovered.inserted) == (500, 490)
    assert again.count() == 500
    first = again.get("req_0")
    assert first is not None and first.extra == {"label": "kept"}  # the committed row is not overwritten
    last = again.get("req_499")
    assert last is not None and last.extra == {"from": "journal"} and last.route == "main"
    again.close()
    third = Ledger.open(str(path), JournalConfig())  # nothing left to replay, nothing doubled
    assert third.recovered is not None and third.recovered.files == 0 and third.count() == 500
    third.close()


def test_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "l.db"
    child(path, 50, "die")
    (jf,) = files(path)
    whole = jf.read_bytes().rstrip(b"\0")
    line = journal.encode_row(_row(rec(99)))
    with open(jf, "r+b") as f:
        f.seek(len(whole))
        f.write(line[: len(line) // 2])  # the crash came in the middle of a copy
    led = Ledger.open(str(path), JournalConfig())
    assert led.recovered is not None
    assert (led.recovered.inserted, led.recovered.skipped_lines) == (50, 1)
    assert led.get("req_99") is None and led.count() == 50
    led.close()
    assert whole.count(b"\n") == 51  # the header and 50 lines


def test_live_process_journal_is_left_alone_until_it_dies(tmp_path):
    path = tmp_path / "l.db"
    p = child(path, 30, "live")  # a sibling worker, still serving
    try:
        led = Ledger.open(str(path), JournalConfig())
        assert led.recovered is not None and led.recovered.live == 1 and led.recovered.inserted == 0
        assert led.count() == 0
        led.close()
    finally:
        p.kill()
        p.wait()
    led = Ledger.open(str(path), JournalConfig())
    assert led.recovered is not None and led.recovered.inserted == 30
    led.close()


def test_journal_of_another_ledger_is_not_replayed(tmp_path):
    path = tmp_path / "l.db"
    child(path, 20, "die")
    for suffix in ("", "-wal", "-shm"):  # the operator starts a fresh ledger in the same place
        Path(str(path) + suffix).unlink(missing_ok=True)
    led = Ledger.open(str(path), JournalConfig())
    assert led.recovered is not None and led.recovered.foreign == 1 and led.count() == 0
    led.close()
    assert len(files(path)) == 1  # kept for whoever owns it, never mixed into this ledger


def test_journal_stays_one_segment_and_empties_once_committed(tmp_path):
    path = tmp_path / "l.db"
    led = Ledger.open(str(path), JournalConfig(segment_bytes=4096))
    for i in range(2000):  # ~700 bytes a line: hundreds of segments' worth
        led.submit(rec(i, steps=[{"kind": "call", "name": "local", "ok": True, "detail": {"n": i}}]))
    assert led.flush()
    left = files(path)
    assert len(left) == 1 and left[0].read_bytes().rstrip(b"\0") == journal.HEADER  # every line cleared
    led.close()
    assert files(path) == [] and led.count() == 2000


def test_a_failing_journal_never_fails_the_request(tmp_path, caplog, monkeypatch):
    path = tmp_path / "l.db"
    led = Ledger.open(str(path), JournalConfig(segment_bytes=4096))

    def full(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal.os, "posix_fallocate", full)  # the disk fills up: no new journal file
    for i in range(50):  # ~10 lines fit in the first file
        led.submit(rec(i))
    assert led.flush() and led.count() == 50
    assert "ledger journal: could not write" in caplog.text and "No space left" in caplog.text
    assert len(files(path)) == 1
    led.close()


def test_fsync_mode_and_lines_from_another_version(tmp_path):
    path = tmp_path / "l.db"
    led = Ledger.open(str(path), JournalConfig(fsync=True))
    led.submit(rec(1))
    assert led.flush() and led.count() == 1
    led.close()
    # A line written by a newer tierwise (an unknown field) or holding no record at all.
    newer = orjson.dumps([*_row(rec(2)), 1])
    assert journal.decode(newer, [*COLUMNS, "future_field"]) == rec(2)
    assert journal.decode(newer) is None  # a line that does not match its header is not guessed at
    assert journal.decode(b'{"request_id": "x"}') is None
    assert journal.decode(b"[1, 2]") is None
    huge = rec(3, input_tokens=1 << 70, steps=[{"name": "x", "ok": True}], stream=True)
    back = journal.decode(journal.encode_row(_row(huge)))
    assert back is not None and back.input_tokens == float(1 << 70)
    assert back.steps == [{"name": "x", "ok": True}] and back.stream is True and back.extra == {}


OPENER = textwrap.dedent("""
    import sys
    from tierwise.config import JournalConfig
    from tierwise.ledger.store import Ledger
    led = Ledger.open(sys.argv[1], JournalConfig())
    print(led.recovered.inserted, flush=True)
    led.close()
""")


def test_workers_starting_together_replay_each_dead_journal_once(tmp_path):
    # `serve` with several workers after a crash of all of them: every new worker replays at start.
    path = tmp_path / "l.db"
    Ledger.open(str(path)).close()  # one ledger id for all
    live = [child(path, 100, "live") for _ in range(4)]  # alive together: none replays another
    for p in live:
        p.kill()
        p.wait()
    # Each dead child journaled req_0..req_99: distinct files, the same ids (INSERT OR IGNORE).
    assert len(files(path)) == 4
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(4)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sum(int(o.split()[0]) for o in outs) == 100
    assert files(path) == []
    led = Ledger.open(str(path), JournalConfig())
    assert led.count() == 100 and led.recovered is not None and led.recovered.files == 0
    led.close()


def test_record_larger_than_a_journal_file_gets_its_own(tmp_path):
    # A stored prompt (`ledger.store_text`) can be megabytes: it must be journaled all the same.
    path = tmp_path / "l.db"
    plain = Ledger.open(str(path))
    plain.close()
    j = journal.Journal(journal.journal_dir(str(path)), plain.ledger_id, segment_bytes=4096)
    assert j.append(_row(rec(1, prompt="x" * 100_000))) != 0
    assert j.append(_row(rec(2))) != 0
    j.close(all_committed=False)  # as if the process died here
    led = Ledger.open(str(path), JournalConfig())
    big = led.get("req_1")
    assert big is not None and big.prompt == "x" * 100_000 and led.count() == 2
    led.close()
