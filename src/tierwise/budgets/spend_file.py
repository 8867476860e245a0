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

The rows of processes no longer running (`spend_members.py` tells which) are folded into one member at each start,
per counter the largest sample and the sum of their own settlements: RESTORE's max and sum give the same from the
fold as from the rows it replaced, and a dead process offers nothing live, so nothing counts twice. Before session 34
(costs6) every start added a copy of its mirror, kept until the counters' windows ended (20 restarts × 5,000
counters + 50,000: 150,000 rows read at the next emptying); now the file holds the live processes' rows and one
fold's.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import uuid
from collections import defaultdict
from typing import Any

from tierwise.budgets.spend_members import Members
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
        self._warned = False
        self.members = Members(path)

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
        try:  # (before its first row: from now on a fold leaves this process's rows alone)
            self.members.hold(member)
        except OSError as e:
            # The lock folder is unusable (not a folder, another user's, read-only): the rows are written all the
            # same. A later fold reads them as a dead process's and may count them twice at a restore; not writing
            # them lost them all (every look failed: an emptied store got nothing of this process back).
            if not self._warned:
                self._warned = True
                log.warning("budgets: could not take a lock in %s (%s): the spend mirror is kept without it",
                            self.members.dir, type(e).__name__)
        db = self._connect()
        try:
            with db:
                db.execute("DELETE FROM budget_spend WHERE (member = ? AND ?) OR expires <= ?", (member, whole, now))
                db.executemany("INSERT OR REPLACE INTO budget_spend VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        finally:
            db.close()

    def fold(self, epoch: str, own: str, now: float) -> int:
        """Fold the rows saved under `epoch` (the store's: counted in it already) by processes no longer running into
        one new member's (blocking; under the offer lock, `Members.lock_offer`). Returns the rows removed."""
        db = self._connect()
        try:
            members = {m for (m,) in db.execute("SELECT DISTINCT member FROM budget_spend WHERE epoch = ?", (epoch,))}
            with self.members.dead(members, own) as dead:
                if len(dead) < 2:
                    return 0
                into: dict[tuple[str, int], list[Any]] = {}
                marks = ",".join("?" * len(dead))
                with db:
                    rows = db.execute("SELECT key, slot, usd, tok, own_usd, own_tok, expires FROM budget_spend WHERE "
                                      f"epoch = ? AND expires > ? AND member IN ({marks})", (epoch, now, *dead))
                    for row in rows.fetchall():
                        if _offer(list(row), now) is None:
                            continue  # (left out of every restore: a row no gateway writes)
                        key, slot, usd, tok, own_usd, own_tok, expires = row
                        f = into.setdefault((key, slot), [0.0, 0, 0.0, 0, 0.0])
                        f[0], f[1] = max(f[0], usd), max(f[1], tok)  # (RESTORE: the largest sample ...)
                        f[2], f[3] = min(f[2] + own_usd, MAX_USD), min(f[3] + own_tok, MAX_TOK)  # (... the sum of own)
                        f[4] = max(f[4], expires)
                    gone = db.execute(f"DELETE FROM budget_spend WHERE epoch = ? AND member IN ({marks})",
                                      (epoch, *dead)).rowcount
                    name = "fold-" + uuid.uuid4().hex
                    db.executemany("INSERT INTO budget_spend VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   [(name, epoch, k, sl, *f) for (k, sl), f in into.items()])
                return int(gone)
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

