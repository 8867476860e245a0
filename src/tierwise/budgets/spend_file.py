"""The spend mirror of each gateway process (`spend_mirror.py`), kept in its ledger's SQLite file (table
`budget_spend`), so a deployment restarted whole with its Redis emptied (every gateway restarted at once, a Redis
without persistence restarted with them) gets its windows' spend back: no live gateway holds it then (before session
33, costs5, a team's daily cap was spent twice).

Each process writes its mirror's offers under its own member id (the store's `member`) and the store's epoch as it
saw it, at most once a look (`store_redis.WATCH_EVERY`) when they changed, and when it closes. A gateway's first call
offers every member's rows saved under another epoch than the store's (`store_redis.RedisStore._from_file`): the
store emptied since they were saved, so what they hold is not in its counters. The store takes each member's offer
once per epoch (the rows are then labelled with it: a later restart does not offer them again) and counts the larger
of the largest sample and the sum of the members' own settlements per counter (`redis_scripts.RESTORE`): members are
processes, so their own settlements never overlap, and a file offered again after a second emptying, or beside the
live gateways' offers, counts nothing twice. Rows go when their counter's
window ends. Not restored: what was settled after a process's last write (at most about a look), and a process's
requests in flight.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections import defaultdict
from typing import Any

from tierwise.sqlite_wal import retry_locked

log = logging.getLogger("tierwise.budgets")

# A row's dollars and tokens are believed up to these (a counter's settled spend in one window): past them, or not a
# finite number at or above zero, the row was written from outside the gateways or corrupted
MAX_USD = 1e9
MAX_TOK = 10**15
MAX_TTL = 40 * 86400  # seconds a restored counter lives at most (a month's window expires 32 days + 1 hour after)

_SCHEMA = """CREATE TABLE IF NOT EXISTS budget_spend (
  member TEXT NOT NULL, epoch TEXT NOT NULL, key TEXT NOT NULL, slot INTEGER NOT NULL, usd REAL NOT NULL,
  tok INTEGER NOT NULL, own_usd REAL NOT NULL, own_tok INTEGER NOT NULL, expires REAL NOT NULL,
  PRIMARY KEY (member, key, slot))"""


class SpendFile:
    def __init__(self, path: str, prefix: str) -> None:
        self.path = path
        # The rows of this store's budget counters only (`<prefix>b:`, controller.py's keys): other deployments may
        # share the file, and one whose prefix begins with this one's (`tw:` and `tw:eu:`) had its rows offered into
        # its own live counters by this one's gateways before review33b (counted twice)
        self.prefix = prefix + "b:"
        self._made = False

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        if not self._made:
            def make() -> None:
                with db:
                    db.execute(_SCHEMA)
            retry_locked(make)
            self._made = True
        return db

    def save(self, member: str, epoch: str, offers: list[str], now: float, whole: bool = True) -> None:
        """Replace this member's rows by `offers` (SpendMirror.offers' lines) seen under `epoch`, or with `whole`
        false write only those (the counters changed since the last save; blocking: call it off the event loop)."""
        rows = []
        for line in offers:
            key, slot, usd, tok, own_usd, own_tok, ttl = line.rsplit(" ", 6)
            rows.append((member, epoch, key, int(slot), float(usd), int(tok), float(own_usd), int(own_tok),
                         now + int(ttl)))
        db = self._connect()
        try:
            with db:
                db.execute("DELETE FROM budget_spend WHERE (member = ? AND ?) OR expires <= ?", (member, whole, now))
                db.executemany("INSERT OR REPLACE INTO budget_spend VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        finally:
            db.close()

    def offered(self, member: str, epoch: str) -> None:
        """`member`'s rows are counted in the store at `epoch` now: offered again only should it move on (blocking)."""
        db = self._connect()
        try:
            with db:
                db.execute("UPDATE budget_spend SET epoch = ? WHERE member = ?", (epoch, member))
        finally:
            db.close()

    def offers(self, epoch: str, now: float) -> dict[str, list[str]]:
        """{member: its offers} of the rows saved under another epoch than `epoch`, for counters still open."""
        db = self._connect()
        try:
            rows = db.execute("SELECT member, key, slot, usd, tok, own_usd, own_tok, expires FROM budget_spend "
                              "WHERE epoch != ? AND expires > ? AND substr(key, 1, ?) = ?",
                              (epoch, now, len(self.prefix), self.prefix)).fetchall()
        except sqlite3.OperationalError:  # (no table yet: nothing saved)
            return {}
        finally:
            db.close()
        out: dict[str, list[str]] = defaultdict(list)
        bad = 0
        for member, *row in rows:
            line = _offer(row, now)
            if line is None or not isinstance(member, str):
                bad += 1
            else:
                out[member].append(line)
        if bad:
            log.warning("budgets: %d row(s) of budget_spend in %s hold values no gateway writes (a word, a number "
                        "below zero, not finite or past %g): left out of the restore", bad, self.path, MAX_USD)
        return dict(out)


def _offer(row: list[Any], now: float) -> str | None:
    """A saved row as RESTORE's offer, or None for a row no gateway writes (tampered with, corrupted): before
    session 33's review (review33b) `inf` failed the start's RESTORE call (a 503, and the counter's field reset to 0),
    and a word or an infinite token count made the whole file unreadable (nothing restored)."""
    key, slot, usd, tok, own_usd, own_tok, expires = row
    if not isinstance(key, str) or not key or len(key.split()) != 1 or type(slot) is not int:
        return None
    if not all(type(x) in (int, float) and 0 <= x <= MAX_USD for x in (usd, own_usd)):
        return None  # (NaN fails the comparison)
    if not all(type(x) is int and 0 <= x <= MAX_TOK for x in (tok, own_tok)):
        return None
    if type(expires) not in (int, float) or not math.isfinite(expires):
        return None
    return f"{key} {slot} {_num(usd)} {tok} {_num(own_usd)} {own_tok} {max(1, int(min(expires - now, MAX_TTL)))}"


def _num(x: float) -> str:
    return "0" if x == 0 else repr(float(x))

