"""The ledger's files against another local user: the ledger (costs, errors, stored prompts) and
its crash journal are readable by the gateway's user only, and a file planted in the journal
folder (a FIFO, a symlink to /dev/zero or to another file) cannot hang, exhaust or feed the
replay at start."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from tierwise.config import JournalConfig
from tierwise.ledger import journal as journal_mod
from tierwise.ledger.store import Ledger


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_ledger_and_journal_are_not_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: files 0644, folders 0755 unless made otherwise
    try:
        path = tmp_path / "ledger.db"
        led = Ledger.open(str(path), JournalConfig(enabled=True))
        try:
            jdir = journal_mod.journal_dir(str(path))
            made = [path, jdir, *jdir.iterdir(), *tmp_path.glob("ledger.db-*")]
            assert len(made) >= 3
            readable = [p.name for p in made if not _private(p)]
            assert not readable, f"other users can read {readable}"
        finally:
            led.close()
    finally:
        os.umask(old)


def test_planted_files_in_the_journal_folder_do_not_hang_or_feed_the_replay(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(str(path), JournalConfig(enabled=True)).close()
    ledger_id = Ledger.open(str(path)).ledger_id
    jdir = journal_mod.journal_dir(str(path))
    jdir.mkdir(exist_ok=True)
    os.mkfifo(jdir / f"{ledger_id}-1-aaaa-000001.jsonl")  # open() and read() would block for ever
    os.symlink("/dev/zero", jdir / f"{ledger_id}-1-bbbb-000001.jsonl")  # read() would never end
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_bytes(b"x\n")
    os.symlink(elsewhere, jdir / f"{ledger_id}-1-cccc-000001.jsonl")
    done = threading.Event()

    def start() -> None:
        Ledger.open(str(path), JournalConfig(enabled=True)).close()
        done.set()

    threading.Thread(target=start, daemon=True).start()
    assert done.wait(30), "the ledger's start hung on a planted journal file"
    assert elsewhere.exists()  # a symlink out is not followed, so what it names is never deleted
