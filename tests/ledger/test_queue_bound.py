"""The ledger holds at most `ledger.max_queued` records in memory while its writer is behind.

The writer is held inside its first write (no timing: an event), more records than the bound are
submitted, and the records held in memory are counted (the queue plus the batch in the writer's hands).
With the journal (the default) the rest wait in the journal only and all of them reach the ledger once
the writer is released; without one they are dropped, counted, and logged once per burst.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from tierwise.config import JournalConfig, LedgerConfig
from tierwise.ledger.journal import journal_dir
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.store import Ledger

BOUND = 100
SENT = 1000


def rec(i: int) -> LedgerRecord:
    return LedgerRecord(request_id=f"req_{i}", ts=1_700_000_000 + i, route="main", decision="local",
                        input_tokens=100, output_tokens=10, extra={"i": i})


class HeldWriter:
    """Stops the ledger's writer inside its next write until `release`."""

    def __init__(self, led: Ledger) -> None:
        self.entered, self.gate, self.held = threading.Event(), threading.Event(), 0
        write = led._write

        def held(db, batch):  # type: ignore[no-untyped-def]
            if not self.gate.is_set():
                self.held = len(batch)
                self.entered.set()
                self.gate.wait()
                self.held = 0
            return write(db, batch)

        led._write = held  # type: ignore[method-assign]
        led.submit(rec(0))
        assert self.entered.wait(60), "the writer never took the first record"

    def release(self) -> None:
        self.gate.set()


def in_memory(led: Ledger, writer: HeldWriter) -> int:
    return led._q.qsize() + writer.held


def submit_all(led: Ledger, writer: HeldWriter) -> int:
    """Records 1..SENT submitted while the writer is held: the most the ledger held in memory meanwhile."""
    most = 0
    for i in range(1, SENT + 1):
        led.submit(rec(i))
        most = max(most, in_memory(led, writer))
    return most


def test_a_held_writer_spills_to_the_journal_and_loses_nothing(tmp_path, caplog):
    path = str(tmp_path / "l.db")
    led = Ledger.open(path, JournalConfig(segment_bytes=64 << 10), max_queued=BOUND)
    writer = HeldWriter(led)
    with caplog.at_level(logging.WARNING, logger="tierwise.ledger"):
        most = submit_all(led, writer)
    assert most <= BOUND
    state = led.backlog()
    assert state["in_memory"] <= BOUND and state["in_journal_only"] == SENT + 1 - state["in_memory"]
    assert state["dropped"] == 0
    assert sum("spill to the journal" in r.getMessage() for r in caplog.records) == 1
    writer.release()
    assert led.flush()
    assert led.count() == SENT + 1 and led.get(f"req_{SENT}").extra == {"i": SENT}
    assert led.backlog()["in_journal_only"] == 0 and led.backlog()["spilled"] == SENT + 1 - BOUND
    led.close()
    assert list(journal_dir(path).glob("*.jsonl")) == []  # every line committed, the files gone
    again = Ledger.open(path)
    assert again.count() == SENT + 1
    again.close()


def test_after_a_spill_the_writer_takes_records_from_memory_again(tmp_path):
    led = Ledger.open(str(tmp_path / "l.db"), JournalConfig(segment_bytes=4096), max_queued=BOUND)
    writer = HeldWriter(led)
    for i in range(1, SENT + 1):
        led.submit(rec(i))
    writer.release()
    assert led.flush()
    for i in range(SENT + 1, SENT + 11):  # queued in memory, no spill
        led.submit(rec(i))
    assert led.flush()
    assert led.count() == SENT + 11 and led.backlog()["spilled"] == SENT + 1 - BOUND
    led.close()


_DIES_WITH_THE_WRITER_HELD = """
import os, sys
sys.path[:0] = [sys.argv[2]]
from test_queue_bound import BOUND, SENT, HeldWriter, rec
from tierwise.config import JournalConfig, LedgerConfig
from tierwise.ledger.store import Ledger
led = Ledger.open(sys.argv[1], JournalConfig(), max_queued=BOUND)
writer = HeldWriter(led)
for i in range(1, SENT + 1):
    led.submit(rec(i))
assert led.backlog()["in_journal_only"] > 0
os._exit(0)  # as a kill would: the writer still held, nothing flushed
"""


def test_records_in_the_journal_only_when_the_process_dies_are_replayed_at_the_next_start(tmp_path):
    import subprocess
    import sys

    path = str(tmp_path / "l.db")
    subprocess.run([sys.executable, "-c", _DIES_WITH_THE_WRITER_HELD, path, str(Path(__file__).parent)],
                   check=True, timeout=120)
    again = Ledger.open(path, JournalConfig())
    assert again.recovered is not None and again.recovered.inserted == SENT + 1
    assert again.count() == SENT + 1
    again.close()


def test_without_a_journal_records_past_the_bound_are_dropped_counted_and_logged_once(tmp_path, caplog):
    led = Ledger.open(str(tmp_path / "l.db"), None, max_queued=BOUND)
    writer = HeldWriter(led)
    with caplog.at_level(logging.WARNING, logger="tierwise.ledger"):
        most = submit_all(led, writer)
        assert most <= BOUND
        writer.release()
        assert led.flush()
        dropped = led.backlog()["dropped"]
        assert dropped == SENT + 1 - BOUND and led.count() + dropped == SENT + 1
        drops = [r for r in caplog.records if "dropping" in r.getMessage()]
        assert len(drops) == 1 and drops[0].levelno == logging.ERROR  # one line for the burst, not 900
        ends = [r for r in caplog.records if "dropped" in r.getMessage() and "burst" in r.getMessage()]
        assert len(ends) == 1 and str(SENT + 1 - BOUND) in ends[0].getMessage()
    led.close()


def test_the_bound_is_configurable_with_a_default(tmp_path):
    from tierwise.config import LedgerConfig

    assert LedgerConfig().max_queued == 10_000
    assert LedgerConfig(max_queued=5).max_queued == 5 and LedgerConfig().max_queued_chars == 64 << 20
    led = Ledger.open(str(Path(tmp_path) / "l.db"))
    assert led.backlog()["max_in_memory"] == 10_000
    led.close()


def test_stored_text_is_bounded_in_characters_too_and_a_larger_record_still_gets_through(tmp_path):
    # With store_text a record can hold ~0.5 MB of prompt and answer: a count alone would not bound memory.
    led = Ledger.open(str(tmp_path / "l.db"), JournalConfig(), max_queued=BOUND, max_queued_chars=50_000)
    writer = HeldWriter(led)
    most = 0
    for i in range(1, 101):
        r = rec(i)
        r.prompt = "x" * 10_000
        led.submit(r)
        most = max(most, in_memory(led, writer))
    assert most <= 1 + 5  # the held record (no text) and 5 of 10,000 characters: 50,000
    assert led.backlog()["text_chars_in_memory"] <= 50_000
    writer.release()
    assert led.flush()
    big = rec(101)
    big.answer = "y" * 80_000  # larger than the bound: written alone, not refused
    led.submit(big)
    assert led.flush()
    assert led.count() == 102 and len(led.get("req_100").prompt) == 10_000 and len(led.get("req_101").answer) == 80_000
    assert led.backlog()["dropped"] == 0
    led.close()


def test_the_journal_s_disk_use_is_bounded_and_records_past_it_are_dropped_and_counted(tmp_path, caplog):
    """While the writer is held, records past `max_queued` wait in the journal only: its files grew with them,
    bounded only by the disk (1,000 records, 169-byte lines in 64 KiB files: 3 files here; a stalled disk under load, gigabytes).
    `journal.max_bytes` bounds them: past it a record is refused by the journal and, with nowhere else to wait,
    dropped and counted as with the journal off; once the writer catches up the journal takes records again."""
    path = str(tmp_path / "l.db")
    led = Ledger.open(path, JournalConfig(segment_bytes=64 << 10, max_bytes=128 << 10), max_queued=BOUND)
    writer = HeldWriter(led)

    def on_disk() -> int:
        return sum(f.stat().st_size for f in journal_dir(path).glob("*.jsonl"))

    most = 0
    with caplog.at_level(logging.WARNING, logger="tierwise.ledger"):
        for i in range(1, SENT + 1):
            led.submit(rec(i))
            most = max(most, on_disk())
    assert most <= 128 << 10
    state = led.backlog()
    assert state["journal_bytes"] == on_disk() and state["max_journal_bytes"] == 128 << 10
    assert state["dropped"] > 0 and state["not_journaled"] == state["dropped"]
    assert sum("ledger.journal.max_bytes" in r.getMessage() for r in caplog.records) == 1  # once, not per record
    writer.release()
    assert led.flush()
    assert led.count() + state["dropped"] == SENT + 1  # each record written or counted
    led.submit(rec(SENT + 1))  # room again: journaled, not dropped
    assert led.flush() and led.backlog()["dropped"] == state["dropped"]
    assert led.backlog()["not_journaled"] == state["not_journaled"]
    led.close()
    assert LedgerConfig().journal.max_bytes == 256 << 20
