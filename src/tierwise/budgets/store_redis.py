"""The Redis store: budgets and rate limits shared by every gateway that points at one Redis.

One script call per admission (check every budget and rate limit that applies, then add the
reservation and the counts, atomically) and one per settlement (replace the reservation with
the real cost, once per request id). Reservations carry a deadline in a sorted set; both
scripts give back the reservations whose deadline passed (a gateway killed between admission
and settlement), a few per call, so none is counted for ever. The keys are computed by the
gateway and passed as arguments; the scripts also touch the keys of the reservations they
sweep, so this store needs one Redis (not a cluster).
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from tierwise.budgets.checks import (
    BudgetCheck,
    RateCheck,
    RateSettlement,
    Refusal,
    Settlement,
)

_SWEEP = """
local function sweep(now, zkey, rprefix)
  local dead = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, 16)
  for _, r in ipairs(dead) do
    local h = redis.call('HGETALL', rprefix .. r)
    for i = 1, #h, 2 do
      local slot, u, t = string.match(h[i + 1], '^(%S+) (%S+) (%S+)$')
      if slot and redis.call('EXISTS', h[i]) == 1 then
        if u ~= '0' then redis.call('HINCRBYFLOAT', h[i], 'u' .. slot, -tonumber(u)) end
        if t ~= '0' then redis.call('HINCRBY', h[i], 't' .. slot, -tonumber(t)) end
      end
    end
    redis.call('DEL', rprefix .. r)
    redis.call('ZREM', zkey, r)
  end
end
"""

# Admissions that arrive in the same turn of the event loop go to Redis in one call (up to
# BATCH): the script runs them one after the other, exactly as separate calls would, and answers
# each. Settlements likewise. Under concurrency that is one round trip for many requests.
# ARGV: now zkey rprefix fits minute frac count, then per admission: rid deadline nb nr, then 8 per
# budget (key slot nslots usd_limit tok_limit usd tok expire_s), then 4 per rate (key rpm tpm tok).
RESERVE = _SWEEP + """
local now = tonumber(ARGV[1])
local zkey, rprefix = ARGV[2], ARGV[3]
local fits = ARGV[4] == '1'
local minute, frac = tonumber(ARGV[5]), tonumber(ARGV[6])
local count = tonumber(ARGV[7])
sweep(now, zkey, rprefix)
local out = {}
local a0 = 8
local w = 1 - frac
for n = 1, count do
  local rid, deadline = ARGV[a0], ARGV[a0 + 1]
  local nb, nr = tonumber(ARGV[a0 + 2]), tonumber(ARGV[a0 + 3])
  local b0 = a0 + 4
  local r0 = b0 + nb * 8
  a0 = r0 + nr * 4
  local refusal = nil
  for i = 0, nb - 1 do
    local a = b0 + i * 8
    local key, slot, nslots = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local ulim, tlim = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    local uamt, tamt = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
    local u, t, oldest = 0, 0, -1
    if nslots == 1 then
      local v = redis.call('HMGET', key, 'u' .. slot, 't' .. slot)
      u, t = tonumber(v[1]) or 0, tonumber(v[2]) or 0
      oldest = slot
    else
      local h = redis.call('HGETALL', key)
      local lo = slot - nslots + 1
      for j = 1, #h, 2 do
        local s = tonumber(string.sub(h[j], 2))
        if s < lo then
          redis.call('HDEL', key, h[j])
        else
          local v = tonumber(h[j + 1])
          if string.sub(h[j], 1, 1) == 'u' then u = u + v else t = t + v end
          if v > 0 and (oldest < 0 or s < oldest) then oldest = s end
        end
      end
    end
    local eps = 1e-12
    if ulim >= 0 and ((fits and u + uamt > ulim + eps) or ((not fits) and u >= ulim - eps)) then
      refusal = {'budget', i, 'usd', tostring(u), oldest}
      break
    end
    if tlim >= 0 and ((fits and t + tamt > tlim) or ((not fits) and t >= tlim)) then
      refusal = {'budget', i, 'tokens', tostring(t), oldest}
      break
    end
  end
  if not refusal then
    for i = 0, nr - 1 do
      local a = r0 + i * 4
      local key, rpm, tpm, tamt = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
      local v = redis.call('HMGET', key, 'r' .. minute, 'r' .. (minute - 1), 't' .. minute, 't' .. (minute - 1))
      local cr, pr, ct, pt = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0
      if rpm >= 0 and pr * w + cr + 1 > rpm then
        refusal = {'rate', i, 'requests', tostring(pr * w + cr), -1, tostring(cr), tostring(pr)}
        break
      end
      local et = pt * w + ct
      if tpm >= 0 and et > 0 and et + tamt > tpm then
        refusal = {'rate', i, 'tokens', tostring(et), -1, tostring(ct), tostring(pt)}
        break
      end
    end
  end
  if refusal then
    out[n] = refusal
  else
    local held = false
    for i = 0, nb - 1 do
      local a = b0 + i * 8
      local key, slot = ARGV[a], ARGV[a + 1]
      local uamt, tamt = ARGV[a + 5], ARGV[a + 6]
      if uamt ~= '0' then redis.call('HINCRBYFLOAT', key, 'u' .. slot, uamt) end
      if tamt ~= '0' then redis.call('HINCRBY', key, 't' .. slot, tamt) end
      if uamt ~= '0' or tamt ~= '0' then
        redis.call('EXPIRE', key, ARGV[a + 7])
        redis.call('HSET', rprefix .. rid, key, slot .. ' ' .. uamt .. ' ' .. tamt)
        held = true
      end
    end
    if held then
      redis.call('EXPIRE', rprefix .. rid, math.floor(tonumber(deadline) - now) + 3600)
      redis.call('ZADD', zkey, deadline, rid)
    end
    for i = 0, nr - 1 do
      local a = r0 + i * 4
      local key = ARGV[a]
      redis.call('HINCRBY', key, 'r' .. minute, 1)
      if ARGV[a + 3] ~= '0' then redis.call('HINCRBY', key, 't' .. minute, ARGV[a + 3]) end
      redis.call('HDEL', key, 'r' .. (minute - 2), 't' .. (minute - 2))
      redis.call('EXPIRE', key, 180)
    end
    out[n] = 0
  end
end
return out
"""

# ARGV: now zkey rprefix sprefix settled_ttl count, then per settlement: rid nb nr, then 7 per
# budget (key slot reserved_usd reserved_tok usd tok expire_s), then 3 per rate (key minute tok).
SETTLE = _SWEEP + """
local now = tonumber(ARGV[1])
local zkey, rprefix, sprefix, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local count = tonumber(ARGV[6])
local out = {}
local a0 = 7
for n = 1, count do
  local rid, nb, nr = ARGV[a0], tonumber(ARGV[a0 + 1]), tonumber(ARGV[a0 + 2])
  local b0 = a0 + 3
  local r0 = b0 + nb * 7
  a0 = r0 + nr * 3
  if redis.call('SET', sprefix .. rid, '1', 'NX', 'EX', ttl) then
    local live = redis.call('ZREM', zkey, rid) == 1
    if live then redis.call('DEL', rprefix .. rid) end
    for i = 0, nb - 1 do
      local a = b0 + i * 7
      local key, slot = ARGV[a], ARGV[a + 1]
      local du, dt = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
      if live then
        du = du - tonumber(ARGV[a + 2])
        dt = dt - tonumber(ARGV[a + 3])
      end
      if du ~= 0 then redis.call('HINCRBYFLOAT', key, 'u' .. slot, du) end
      if dt ~= 0 then redis.call('HINCRBY', key, 't' .. slot, dt) end
      if du ~= 0 or dt ~= 0 then redis.call('EXPIRE', key, ARGV[a + 6]) end
    end
    for i = 0, nr - 1 do
      local a = r0 + i * 3
      if ARGV[a + 2] ~= '0' and redis.call('EXISTS', ARGV[a]) == 1 then
        redis.call('HINCRBY', ARGV[a], 't' .. ARGV[a + 1], ARGV[a + 2])
      end
    end
    out[n] = 1
  else
    out[n] = 0
  end
end
sweep(now, zkey, rprefix)
return out
"""


def _num(x: float) -> str:
    return "0" if x == 0 else repr(float(x))


BATCH = 64  # requests per script call at most (bounds the script's run time and argument list)


class _Queue:
    """Calls that arrive in one turn of the event loop, run together by `flush` in one script call."""

    def __init__(self, flush: Any) -> None:
        self.items: list[tuple[Any, asyncio.Future[Any]]] = []
        self._flush = flush
        self._scheduled = False
        self.tasks: set[asyncio.Task[None]] = set()

    def put(self, item: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self.items.append((item, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start)
        return fut

    def _start(self) -> None:
        self._scheduled = False
        items, self.items = self.items, []
        for i in range(0, len(items), BATCH):
            task = asyncio.ensure_future(self._run(items[i:i + BATCH]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run(self, items: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._flush([it for it, _ in items])
        except BaseException as e:  # every caller in the batch sees the store's failure
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(e if isinstance(e, Exception) else ConnectionError("cancelled"))
            if not isinstance(e, Exception):
                raise
            return
        for (_, fut), r in zip(items, results, strict=True):
            if not fut.done():
                fut.set_result(r)


class RedisStore:
    shared = True

    def __init__(self, url: str, prefix: str, *, timeout: float) -> None:
        self.prefix = prefix
        self.zkey = prefix + "reservations"
        self.rprefix = prefix + "res:"
        self.sprefix = prefix + "settled:"
        self.client: Any = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                                   decode_responses=True, health_check_interval=0)
        self._reserve = self.client.register_script(RESERVE)
        self._settle = self.client.register_script(SETTLE)
        self._reserves = _Queue(self._reserve_many)
        self._settles = _Queue(self._settle_many)
        self.fits = False

    async def reserve(self, rid: str, budgets: list[BudgetCheck], rates: list[RateCheck], *, now: float,
                      minute: int, frac: float, deadline: float, fits: bool) -> Refusal | None:
        self.fits = fits
        out = await self._reserves.put((rid, deadline, budgets, rates, now, minute, frac))
        if out == 0:
            return None
        kind, i, what, used, oldest = out[0], int(out[1]), out[2], float(out[3]), int(out[4])
        if kind == "budget":
            return Refusal("budget", i, what, used, oldest if oldest >= 0 else None)
        return Refusal("rate", i, what, used, None, float(out[5]), float(out[6]))

    async def _reserve_many(self, items: list[Any]) -> list[Any]:
        now, minute, frac = items[-1][4:]  # the batch's latest clock (they are microseconds apart)
        args: list[Any] = [repr(now), self.zkey, self.rprefix, "1" if self.fits else "0", minute, repr(frac),
                           len(items)]
        for rid, deadline, budgets, rates, *_ in items:
            args += [rid, repr(deadline), len(budgets), len(rates)]
            for c in budgets:
                args += [c.key, c.slot, c.nslots, repr(c.usd_limit), repr(c.tok_limit), _num(c.usd), c.tok,
                         c.expire_s]
            for r in rates:
                args += [r.key, repr(r.rpm), repr(r.tpm), r.tok]
        out: list[Any] = await self._reserve(args=args)
        return out

    async def settle(self, rid: str, budgets: list[Settlement], rates: list[RateSettlement], *, now: float,
                     settled_ttl: float) -> bool:
        return bool(await self._settles.put((rid, budgets, rates, settled_ttl, now)))

    async def _settle_many(self, items: list[Any]) -> list[Any]:
        args: list[Any] = [repr(items[-1][4]), self.zkey, self.rprefix, self.sprefix, int(items[0][3]), len(items)]
        for rid, budgets, rates, *_ in items:
            args += [rid, len(budgets), len(rates)]
            for s in budgets:
                args += [s.key, s.slot, _num(s.reserved_usd), s.reserved_tok, _num(s.usd), s.tok, s.expire_s]
            for r in rates:
                args += [r.key, r.minute, r.tok]
        out: list[Any] = await self._settle(args=args)
        return out

    async def buckets_for(self, prefix: str) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        async for k in self.client.scan_iter(match=prefix + "*", count=500):
            h = await self.client.hgetall(k)
            out[k] = {f: float(v) for f, v in h.items()}
        return out

    async def reservations_count(self) -> int:
        return int(await self.client.zcard(self.zkey))

    async def close(self) -> None:
        for q in (self._reserves, self._settles):
            if q.tasks:
                await asyncio.wait(list(q.tasks), timeout=5)
        await self.client.aclose()

    def info(self) -> dict[str, Any]:
        return {"backend": "redis"}
