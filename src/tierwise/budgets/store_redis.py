"""The Redis store: budgets and rate limits shared by every gateway that points at one Redis.

One Lua script, run atomically by Redis, does both operations: settle (replace a reservation
with the real cost, once per request id) and admit (check every budget and rate limit that
applies, then add the reservation and the counts, or refuse and change nothing). Admissions
that arrive in the same turn of the gateway's event loop go in one call (up to BATCH), with the
settlements waiting at that moment; the script decides them one after the other, exactly as
separate calls would. A settlement that finds no admission to ride with goes on its own after
SETTLE_DELAY. So a request costs at most one round trip, and under concurrency one round trip
serves many requests.

Reservations carry a deadline in a sorted set; every call gives back a few reservations whose
deadline passed (a gateway killed between admission and settlement), so none is counted for
ever. The keys are computed by the gateway and passed as arguments; the script also touches the
keys of the reservations it sweeps, so this store needs one Redis (not a cluster).

A Redis that comes back empty (restarted without persistence, failed over to an empty replica, flushed) forgot the
windows' spend, and every gateway spent the whole cap again (two gateways, a $0.05 budget: $0.1008 paid). The store
keeps an epoch key (`<prefix>epoch`, no TTL); every script call names the epoch this gateway last saw, and one that
finds it gone or changed decides nothing and answers the new epoch. The gateway then offers what it knows each
counter's settled spend was (`spend_mirror.py`: sampled about once a second, its own settlements since included), the
store adds back the best offer per counter once (redis_scripts.RESTORE), and the gateway sends its call again. A gateway no longer running
has its share counted up to the live ones' last look (before session 30, costs2, each gateway added back only its own
settlements: a dead one's share was lost). Each gateway also holds again the reservations of its own requests still
in flight (`_held`); a dead gateway's are not restored.
A copy of the epoch (`<prefix>epoch:copy`) tells an emptied store from an epoch key lost alone (evicted, deleted):
the latter is put back as it was, and nothing is added back (it was counted twice before review29c).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from tierwise.budgets.checks import (
    BudgetCheck,
    RateCheck,
    RateSettlement,
    Refusal,
    Settlement,
)
from tierwise.budgets.redis_scripts import LOOK, REHOLD, RENEW, REPAIR, RESTORE, SCRIPT
from tierwise.budgets.spend_file import SpendFile
from tierwise.budgets.spend_mirror import SpendMirror
from tierwise.dispatch.connection import tls_built_early

log = logging.getLogger("tierwise.budgets")

BATCH = 64  # admissions (and settlements) per script call at most: bounds its run time and arguments
SETTLE_DELAY = 0.02  # seconds a settlement waits for an admission to ride with (its reservation holds meanwhile)
RETRY_EVERY = 1.0  # seconds between two tries of the settlements a store error kept back
MAX_KEPT = 10_000  # settlements kept back at most (past it the oldest are dropped, with a warning)

RESTORE_CHUNK = 512  # counters per RESTORE call
WATCH_EVERY = 1.0  # seconds between two looks at the epoch and the counters settled since the last
# Seconds from a settlement to its row in the ledger's file (spend_file.py) at most: saved only at the looks before
# session 36 (costs8), a deployment SIGKILLed whole lost the last second's settlements from its files, and
# bench/team_chaos.py `--scenario killdeploy` (its clients in waves of 50) served 46-50 answers past the cap in half
# of its runs (1.29x paid; 1.14x when a look fell between the wave's answers and the kill)
SAVE_SOON = 0.1
LIVE_SLACK = 1.0  # seconds past a look a new gateway on an emptied store waits for the live ones' spend at most
RESTARTED_S = 5  # a Redis up for less than this has just (re)started: live gateways may not have reconnected yet


def counted(v: Any) -> float:
    try:
        x = float(v)
    except ValueError:
        return 0.0
    return x if x >= 0 else 0.0  # (NaN too)


def _num(x: float) -> str:
    return "0" if x == 0 else repr(float(x))


def _admission(rid: str, deadline: float, budgets: list[BudgetCheck], rates: list[RateCheck]) -> str:
    words = [rid, repr(deadline), str(len(budgets)), str(len(rates))]
    for c in budgets:
        words += [c.key, str(c.slot), str(c.nslots), repr(c.usd_limit), repr(c.tok_limit), _num(c.usd), str(c.tok),
                  str(c.expire_s)]
    for r in rates:
        words += [r.key, repr(r.rpm), repr(r.tpm), str(r.tok)]
    return " ".join(words)


def _release(admission: str) -> str:
    """The settlement that gives back whatever `admission` reserved (if Redis applied it)."""
    return admission.split(" ", 1)[0] + " -1 0"


def _settlement(rid: str, budgets: list[Settlement], rates: list[RateSettlement]) -> str:
    words = [rid, str(len(budgets)), str(len(rates))]
    for s in budgets:
        words += [s.key, str(s.slot), _num(s.reserved_usd), str(s.reserved_tok), _num(s.usd), str(s.tok),
                  str(s.expire_s)]
    for r in rates:
        words += [r.key, str(r.minute), str(r.tok)]
    return " ".join(words)


class RedisStore:
    shared = True

    def __init__(self, url: str, prefix: str, *, timeout: float, count_dead: bool = False,
                 ledger_path: str | None = None) -> None:
        self.prefix = prefix
        # The mirror kept in the ledger's file: a deployment restarted whole with its Redis emptied gets it back
        self.file = SpendFile(ledger_path, prefix) if isinstance(ledger_path, str) else None
        self.count_dead = "1" if count_dead else "0"  # budgets.dead_reservations: count
        self.zkey = prefix + "reservations"
        self.rprefix = prefix + "res:"
        self.sprefix = prefix + "settled:"
        self.member = uuid.uuid4().hex  # this gateway (a new epoch's name, should a call find none: member and call)
        # The name its watcher gives its connections (the prefix's digest and the member): a gateway's first call on
        # an empty store looks for other gateways of the prefix by it (`_wait_for_live`)
        self.names = "tierwise-budgets-" + hashlib.sha256(prefix.encode()).hexdigest()[:12] + "-"
        self.client: Any = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                                   decode_responses=True, health_check_interval=0)
        self._tls = tls_built_early(self.client)  # not inside the first request's connect timeout
        self._script = self.client.register_script(SCRIPT)
        self._renew = self.client.register_script(RENEW)
        self._restore_script = self.client.register_script(RESTORE)
        self._rehold = self.client.register_script(REHOLD)
        # The reservations of this gateway's requests in flight, per request id: "rid hold_s key slot usd tok
        # expire_s..." (held again should the store come back empty; dropped at settlement)
        self._held: dict[str, str] = {}
        self._look = self.client.register_script(LOOK)
        self._repair = self.client.register_script(REPAIR)
        self.ekey = prefix + "epoch"
        self.epoch = ""  # the store's epoch as this gateway last saw it ("": not yet)
        self._saved_epoch = ""  # the epoch its rows in the ledger's file were last saved under
        self._calls = itertools.count()
        self.mirror = SpendMirror()  # every counter's settled spend as this gateway knows it
        self._restoring: asyncio.Future[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        # Waiting: (argument string, clock, future); the clock is (now, minute, frac) of an admission.
        self._admissions: list[tuple[str, tuple[float, int, float], asyncio.Future[Any]]] = []
        self._settlements: list[tuple[str, float, asyncio.Future[Any] | None]] = []
        self._soon = False
        self._later: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._save_due = False  # a save of the settlements just mirrored is due within SAVE_SOON, or running
        self._saving = asyncio.Lock()  # (one save at a time: the look's and a settlement's)
        self.fits = False
        self.settled_ttl = 600
        # Settlements (and releases of admissions whose answer was lost) a store error kept back: tried again
        # every RETRY_EVERY and with every call until Redis takes them. Dropped, a settlement's real cost was
        # never counted (its reservation given back at its deadline), and an admission Redis applied while its
        # reply timed out held its reservation until reservation_ttl.
        self._kept: list[tuple[str, asyncio.Future[Any] | None]] = []
        self._retry: asyncio.TimerHandle | None = None
        self._dropped_said = False
        # Redis's clock minus this host's: the controller reads calendar windows (day, month), rolling slots and
        # rate-limit minutes on Redis's clock, as the reservation deadlines are, so replicas whose clocks differ
        # count in one window. Learnt from TIME before the first admission, then from every script's reply.
        self.offset: float | None = None
        self._learning: asyncio.Future[float] | None = None

    # ------------------------------------------------------------------ the two operations

    async def reserve(self, rid: str, budgets: list[BudgetCheck], rates: list[RateCheck], *, now: float,
                      minute: int, frac: float, deadline: float, fits: bool) -> Refusal | None:
        self.fits = fits
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._admissions.append((_admission(rid, deadline, budgets, rates), (now, minute, frac), fut))
        if not self._soon:
            self._soon = True
            loop.call_soon(self._flush)
        out = await fut
        if out == 0:
            held = [f"{c.key} {c.slot} {_num(c.usd)} {c.tok} {c.expire_s}" for c in budgets if c.usd or c.tok]
            if held:
                if len(self._held) >= MAX_KEPT:  # (a request never settled: the oldest go, as their deadlines do)
                    del self._held[next(iter(self._held))]
                self._held[rid] = f"{rid} {max(1, int(deadline - now))} " + " ".join(held)
            return None
        kind, i, what, used, oldest = out[0], int(out[1]), out[2], float(out[3]), int(out[4])
        if kind == "budget":
            return Refusal("budget", i, what, used, oldest if oldest >= 0 else None)
        return Refusal("rate", i, what, used, None, float(out[5]), float(out[6]))

    async def settle(self, rid: str, budgets: list[Settlement], rates: list[RateSettlement], *, now: float,
                     settled_ttl: float) -> bool:
        self.settled_ttl = int(settled_ttl)
        self._held.pop(rid, None)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._settlements.append((_settlement(rid, budgets, rates), now, fut))
        if not self._soon and self._later is None:
            self._later = loop.call_later(SETTLE_DELAY, self._flush)
        done, when = await fut
        if done:
            now = time.time()
            for b in budgets:  # (remembered: added back should the store come back empty)
                if b.usd or b.tok:
                    self.mirror.own(b.key, b.slot, b.usd, b.tok, when, b.expire_s, now)
            if self.file is not None and not self._save_due:
                self._save_due = True
                loop.call_later(SAVE_SOON, self._save_now)
        return bool(done)

    def _save_now(self) -> None:
        task = asyncio.ensure_future(self._save_soon())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save_soon(self) -> None:
        """The save a settlement asked for; one at a time, never queued: a settlement during it leaves its change
        to the next (before review36c each settlement 0.1 s after the last added a task waiting for the save lock:
        ten a second, unbounded, while another writer held the ledger's file; SQLite waits up to 30 s for it)."""
        ok = False
        try:
            ok = await self._save()
        finally:
            if ok and self.mirror.changed and self.file is not None:  # (settled during it; a failure: the look's)
                asyncio.get_running_loop().call_later(SAVE_SOON, self._save_now)
            else:
                self._save_due = False

    async def _watch(self) -> None:
        """Look at the epoch and at the counters settled since the last look, about once a second: a gateway that
        got no request after Redis came back empty left its share out (and the others spent it again), and what the
        other gateways settled is mirrored here, so a share of one no longer running is not lost with it."""
        while True:
            await asyncio.sleep(WATCH_EVERY)
            try:  # (a sign of this gateway for `_wait_for_live`: a Redis that refuses CLIENT SETNAME gets none)
                await self.client.client_setname(self.names + self.member)
            except Exception:  # noqa: BLE001
                pass
            await self._look_once()
            await self._save()

    async def _look_once(self) -> None:
        try:
            # (nobody has called since the store emptied: this gateway starts the new epoch)
            out = await self._look(args=[self.ekey, uuid.uuid4().hex, self.mirror.since])
            epoch, rnow, since = out[0], float(out[1]), str(out[2])
            if epoch and self.epoch and epoch != self.epoch:
                await self._restore(epoch)
            elif epoch == self.epoch:
                self.mirror.sample(rnow, out[3:], time.time())
                self.mirror.since = since
        except Exception:  # noqa: BLE001 - an outage: the admissions see it (and /health says so)
            pass

    async def _save(self) -> bool:
        """This process's mirror into its ledger's file, when it changed (`spend_file.py`); False if it failed."""
        async with self._saving:
            whole = self._saved_epoch != self.epoch  # (all of it under a new epoch; else what changed since the last)
            if self.file is None or not self.epoch or not (whole or self.mirror.changed):
                return True
            changed, self.mirror.changed = self.mirror.changed, set()
            try:
                await asyncio.to_thread(self.file.save, self.member, self.epoch,
                                        self.mirror.offers(time.time(), None if whole else changed), time.time(), whole)
                self._saved_epoch = self.epoch
            except Exception as e:  # noqa: BLE001 - a full disk or a locked file: the next look tries again
                self.mirror.changed |= changed
                log.warning("budgets: could not keep the spend mirror in %s (%s)", self.file.path, type(e).__name__)
                return False
            return True

    def start(self) -> None:
        """The server started: with a ledger file, its spend is offered now (and the watcher started), not at the
        first request, which may never come to this gateway (its share was left out, and the others spent it)."""
        if self.file is not None:
            task = asyncio.ensure_future(self._start())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start(self) -> None:
        try:
            await self.learn_offset()
        except Exception:  # noqa: BLE001 - an outage: the first admission tries again
            return
        if self._watcher is None and self.epoch:
            self._watcher = asyncio.ensure_future(self._watch())

    async def _from_file(self) -> None:
        """This gateway's first call: offer what the ledger's file holds of every process's mirror saved under
        another epoch than the store's (the store emptied since: a deployment restarted whole with its Redis),
        each process's once per epoch (`spend_file.py`)."""
        if self.file is None:
            return
        try:  # (the offer lock: no other process folds rows this start offers before it marks them offered)
            lock = await asyncio.to_thread(self.file.members.lock_offer)
        except OSError as e:
            log.warning("budgets: could not lock the spend kept beside %s (%s)", self.file.path, type(e).__name__)
            lock = None
        if lock is None:  # (held by a process that does not let go: offered all the same, nothing folded)
            log.warning("budgets: another process holds %s.spend/offer.lock; offering the spend file without it, "
                        "and folding nothing this start", self.file.path)
        try:
            await self._offer_file(self.file, fold=lock is not None)
        finally:
            if lock is not None:
                self.file.members.unlock(lock)

    async def _offer_file(self, file: SpendFile, fold: bool) -> None:
        for _ in range(3):
            epoch = await self.client.get(self.ekey)
            if not epoch:  # (an empty store: its epoch made now, as this gateway's first call would)
                epoch = (await self._look(args=[self.ekey, uuid.uuid4().hex, "+inf"]))[0]
            try:
                saved = await asyncio.to_thread(file.offers, epoch, time.time())
            except Exception as e:  # noqa: BLE001
                log.warning("budgets: could not read the spend kept in %s (%s)", file.path, type(e).__name__)
                return
            base = f"{self.prefix}restored:{epoch}"
            usd = 0.0
            for member, items in saved.items():
                for i in range(0, len(items), RESTORE_CHUNK):
                    if not await self._restore_script(args=[self.ekey, epoch, base, f"{member}:{i}", 40 * 86400,
                                                            *items[i:i + RESTORE_CHUNK]]):
                        break  # (the epoch moved on meanwhile: again with the new one)
                else:
                    usd += sum(float(x.split(" ")[2]) for x in items)
                    await asyncio.to_thread(file.offered, member, epoch)
                    continue
                break
            else:
                if saved:
                    log.warning("budgets: the budget store holds another epoch than this gateway's ledger file saw "
                                "(emptied since: a restart without persistence?); offered back the spend the file "
                                "kept of %d gateway process(es) ($%.4f of samples; each counted once)", len(saved), usd)
                self.epoch = self.epoch or epoch
                if not fold:
                    return
                try:  # (the rows of processes no longer running, folded into one member's: spend_file.fold)
                    await asyncio.to_thread(file.fold, epoch, self.member, time.time())
                except Exception as e:  # noqa: BLE001 - a locked or full file: the next start folds them
                    log.warning("budgets: could not fold the spend kept in %s (%s)", file.path, type(e).__name__)
                return

    async def _restore(self, epoch: str) -> None:
        """The store is at `epoch`, not the one this gateway last saw: add back what it settled (once)."""
        while self.epoch != epoch:
            if self._restoring is None:
                self._restoring = asyncio.ensure_future(self._add_back(epoch))
                self._restoring.add_done_callback(lambda _: setattr(self, "_restoring", None))
            await asyncio.shield(self._restoring)
            if self.epoch != epoch:  # it moved on again meanwhile: the next call learns which
                return

    async def _add_back(self, epoch: str) -> None:
        items = self.mirror.offers(time.time())
        usd = sum(float(x.split(" ")[2]) for x in items)
        base = f"{self.prefix}restored:{epoch}"
        for i in range(0, max(1, len(items)), RESTORE_CHUNK):
            ok = await self._restore_script(args=[self.ekey, epoch, base, f"{self.member}:{i}", 40 * 86400,
                                                  *items[i:i + RESTORE_CHUNK]])
            if not ok:
                return
        held = list(self._held.values())
        for i in range(0, len(held), RESTORE_CHUNK):
            if not await self._rehold(args=[self.ekey, epoch, self.zkey, self.rprefix, self.sprefix,
                                            *held[i:i + RESTORE_CHUNK]]):
                return
        if self.epoch:  # (not on this gateway's first call: nothing was lost that it knew of)
            log.warning("budgets: the budget store came back without its data (epoch %s); this gateway offered back "
                        "the settled spend it knew of in the windows still open ($%.4f in %d counters; the largest "
                        "offer per counter counts) and held its %d reservation(s) in flight again. Spend settled after the "
                        "gateways' last look at the store, and the reservations of gateways no longer running, are not "
                        "restored: run Redis with AOF", epoch[:8], usd, len(items), len(held))
        self.epoch = epoch

    def _flush(self) -> None:
        self._soon = False
        if self._later is not None:
            self._later.cancel()
            self._later = None
        adm, self._admissions = self._admissions, []
        st, self._settlements = self._settlements, []
        if self._kept:
            now = time.time()
            st = [(s, now, f) for s, f in self._kept] + st
            self._kept = []
        while adm or st:
            task = asyncio.ensure_future(self._run(adm[:BATCH], st[:BATCH]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            adm, st = adm[BATCH:], st[BATCH:]

    async def _run(self, adm: list[Any], st: list[Any]) -> None:
        clocks = [c for _, c, _ in adm]
        now, minute, frac = max(clocks) if clocks else (max(n for _, n, _ in st), 0, 0.0)
        args: list[Any] = [repr(now), self.zkey, self.rprefix, self.sprefix, self.settled_ttl,
                           "1" if self.fits else "0", minute, repr(frac), len(st), self.count_dead, self.ekey,
                           self.epoch, f"{self.member}.{next(self._calls)}"]
        args += [s for s, _, _ in st]
        args += [a for a, _, _ in adm]
        futures = [f for _, _, f in st] + [f for _, _, f in adm]
        try:
            for _ in range(4):
                out = await self._script(args=args)
                if out[0] != "epoch":
                    break
                await self._restore(out[1])  # the store came back empty: this gateway's share first
                args[11] = self.epoch
            else:
                raise ConnectionError("the budget store's epoch kept changing")
            settled, admitted, rnow, epoch = out
            self.epoch = self.epoch or epoch
            self.offset = float(rnow) - time.time()
            if self._watcher is None:
                self._watcher = asyncio.ensure_future(self._watch())
        except BaseException as e:  # every admission in the batch sees the store's failure
            if isinstance(e, aioredis.ResponseError) and "WRONGTYPE" in str(e):
                await self._repair_types([a for a, _, _ in adm] + [s for s, _, _ in st])
            # The call may have run in Redis all the same (a reply that timed out): settlements are kept to be
            # tried again, and each admission is released (both idempotent by request id).
            self._keep([(s, f) for s, _, f in st] + [(_release(a), None) for a, _, _ in adm])
            for _, _, f in adm:
                if not f.done():
                    f.set_exception(e if isinstance(e, Exception) else ConnectionError("cancelled"))
            if not isinstance(e, Exception):
                raise
            return
        when = float(rnow)
        for f, r in zip(futures, [*((x, when) for x in settled), *admitted], strict=True):
            if f is not None and not f.done():
                f.set_result(r)

    async def _repair_types(self, calls: list[str]) -> None:
        """A call failed on a key of another type than the script's (`redis_scripts.REPAIR`): such a key is deleted,
        so the next call runs."""
        keys = [self.zkey, "zset", self.ekey, "string", self.ekey + ":copy", "string", self.ekey + ":recent", "zset",
                self.ekey + ":recent:ends", "zset"]
        for c in calls:
            keys += [self.rprefix + c.split(" ", 1)[0], "hash"]
        try:
            if n := await self._repair(args=keys):
                log.warning("budgets: %d key(s) of the budget store were of another type than it writes (written from "
                            "outside); deleted", n)
        except Exception:  # noqa: BLE001 - the store's failure is already reported by the call's own
            pass

    def _keep(self, items: list[tuple[str, asyncio.Future[Any] | None]]) -> None:
        self._kept += items
        if len(self._kept) > MAX_KEPT:
            for _, f in self._kept[:-MAX_KEPT]:
                if f is not None and not f.done():
                    f.set_exception(ConnectionError("budget store unavailable"))
            if not self._dropped_said:
                self._dropped_said = True
                log.warning("budgets: Redis unavailable for long: settlements dropped (their reservations are "
                            "given back after reservation_ttl, their real cost is not counted)")
            del self._kept[:-MAX_KEPT]
        if self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(RETRY_EVERY, self._try_kept)

    def _try_kept(self) -> None:
        self._retry = None
        if self._kept and not self._soon:
            self._flush()

    async def renew(self, rids: list[str], ttl: float, hold_s: int) -> None:
        """Move the deadlines of requests still in flight to `ttl` seconds from now on Redis's clock (only those
        still reserved: XX), so only a dead gateway's reservations expire, however long a live request runs."""
        for i in range(0, len(rids), 512):
            await self._renew(args=[self.zkey, self.rprefix, repr(float(ttl)), hold_s, *rids[i:i + 512]])

    # ------------------------------------------------------------------ status and lifecycle

    async def buckets_for(self, prefix: str, exact: bool = False) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        if exact:  # one known key (a global budget's bucket): no SCAN through every key of the database
            h = await self._hash(prefix)
            return {prefix: h} if h else {}
        # The prefix is taken literally: `key_prefix` may hold a glob character (`spend[eu]:`), which matched other
        # keys, not these.
        literal = "".join("\\" + c if c in "*?[]\\^" else c for c in prefix)
        async for k in self.client.scan_iter(match=literal + "*", count=500):
            h = await self._hash(k)
            if h:
                out[k] = h
        return out

    async def in_flight(self, key: str, slot: int, nslots: int) -> tuple[float, float]:
        """USD and tokens reservations in flight hold in a counter's window ending at `slot` (refusals.py): what it
        counts (`u`, `t`) less what was settled into it (`s`, `k`) and what dead gateways' reservations counted as spent
        under `dead_reservations: count` (`d`, `e`; before session 35 that mode told no refusal of reservations)."""
        sums = {"u": 0.0, "t": 0.0, "s": 0.0, "k": 0.0, "d": 0.0, "e": 0.0}
        for f, v in (await self._hash(key)).items():
            s = f[1:]
            if f[:1] in sums and s.isdigit() and slot - nslots < int(s) <= slot:
                sums[f[0]] += v
        return sums["u"] - sums["s"] - sums["d"], sums["t"] - sums["k"] - sums["e"]

    async def _hash(self, key: str) -> dict[str, float]:
        """A counter's fields as the admission script counts them (`redis_scripts.counted`): below zero or not a
        number, 0; a key under the prefix that is not a hash, nothing. One such key or word written from outside
        made the whole of `GET /v1/tierwise/budgets` (and `tierwise budgets`) a 503 "budget store unavailable"
        before session 32."""
        try:
            h = await self.client.hgetall(key)
        except aioredis.ResponseError:  # WRONGTYPE
            return {}
        return {f: counted(v) for f, v in h.items()}

    async def probe(self) -> None:
        """One write that expires (what an admission needs: a Redis out of memory answers PING, not this)."""
        await self.client.set(self.prefix + "probe", "1", ex=60)

    async def sweep(self) -> None:
        """Give back every reservation past its deadline (a killed gateway's), as each store call does 16 at a time:
        with no admission after a replica was killed, `tierwise budgets`, `/v1/tierwise/budgets` and the gauge
        showed its reservations in flight, and its budgets that much more spent, for as long as traffic stayed away."""
        for _ in range(64):  # 1,024 at most per status read
            sec, usec = await self.client.time()
            if not await self.client.zcount(self.zkey, "-inf", sec + usec / 1e6):
                return
            await self._script(args=[repr(time.time()), self.zkey, self.rprefix, self.sprefix, self.settled_ttl, "0",
                                     0, "0.0", 0, self.count_dead, self.ekey, "", f"{self.member}.{next(self._calls)}"])

    async def learn_offset(self) -> float:
        """Redis's clock minus this host's, from one TIME (halfway through the round trip). The first admissions
        arrive together: they share one TIME (twenty at once opened twenty connections, and under load one timed
        out: a 503 for nothing)."""
        if self._learning is None or self._learning.done():
            self._learning = asyncio.ensure_future(self._time_offset())
        return await asyncio.shield(self._learning)

    async def _time_offset(self) -> float:
        t0 = time.time()
        async with self.client.pipeline(transaction=False) as p:
            (sec, usec), found = await p.time().exists(self.ekey, self.ekey + ":copy").execute()
        offset = sec + usec / 1e6 - (t0 + time.time()) / 2
        if not found and not self.epoch:  # (this gateway's first call, on an empty store)
            await self._wait_for_live()
        if not self.epoch:
            await self._from_file()
        self.offset = offset
        return offset

    async def _wait_for_live(self) -> None:
        """This gateway's first call finds the store empty: a new deployment, or a store that came back empty while
        other gateways ran. Those add back the spend they know within a look (`_watch`, WATCH_EVERY); a gateway that
        admitted before then counted from zero (session 31's leftover: a gateway started just after a Redis restart
        or flush spent the cap again for about a second). Waits for the first of them to add back (or WATCH_EVERY +
        LIVE_SLACK) when there is a sign of them: another gateway's connection under this prefix (a flush or a
        deletion leaves them connected), a Redis up for less than RESTARTED_S (a restart closed their connections;
        they come back within a look), or a Redis that will not say (CLIENT LIST refused). A new deployment on a
        Redis that has been up a while waits for nothing."""
        try:
            up = int((await self.client.info("server")).get("uptime_in_seconds", 0))
            others = any(str(c.get("name", "")).startswith(self.names) and not c["name"].endswith(self.member)
                         for c in await self.client.client_list())
        except Exception:  # noqa: BLE001 - a managed Redis refusing CLIENT or INFO: nothing tells, so wait
            up, others = 0, True
        if not others and up >= RESTARTED_S:
            return
        end = time.monotonic() + WATCH_EVERY + LIVE_SLACK
        while time.monotonic() < end:
            epoch = await self.client.get(self.ekey)
            if epoch and await self.client.exists(f"{self.prefix}restored:{epoch}"):
                return
            await asyncio.sleep(0.05)

    async def reservations_count(self) -> int:
        return int(await self.client.zcard(self.zkey))

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):  # (it may be writing the file: let it see the cancel)
                await self._watcher
        if self._admissions or self._settlements or self._kept:
            self._flush()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self.file is not None and self.epoch:  # (a last look: what the others settled since, into the file)
            await self._look_once()
            await self._save()
            self.file.members.release()
        await self.client.aclose()

    def info(self) -> dict[str, Any]:
        return {"backend": "redis"}
