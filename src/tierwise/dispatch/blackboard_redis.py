"""The blackboard's Redis transport: one hash, one field per replica, one round trip per exchange.

`exchange` runs one Lua script: it stamps this replica's statistics with Redis's own clock
(so replicas on hosts with skewed clocks agree on ages), drops the fields of replicas that have
not published for `ttl` (a killed gateway vanishes within its TTL), and returns every other
live replica's statistics. The hash itself expires when no replica renews it. A gateway also reads
(and sweeps) the workers' hash in the same call: workers publish there, never into the gateways' one
(their Redis users may write only that key), so a gateway knows which statistics a worker gave.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

# KEYS[1]: the board hash this process publishes to; KEYS[2] (optional): a hash it only reads (the workers').
# ARGV: replica id, payload (JSON), ttl_ms, max entries returned, most fields a hash may hold, longest field,
# most bytes the workers' hash may take, which of KEYS is the workers' hash (1 or 2; 0: none).
# Returns {server time ms, how many pairs come from KEYS[1], id1, "stamp json1", id2, "stamp json2", ...}
# without this replica's own field: first those of KEYS[1], then those of KEYS[2].
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local most, longest = tonumber(ARGV[5]), tonumber(ARGV[6])
-- A hash past `most` fields was not written by this script (one field per live replica): a hostile writer
-- (a worker's user may HSET the workers' hash) made every gateway read it whole at every exchange. Dropped;
-- live replicas and workers publish again at their next exchange. The workers' hash (KEYS[ARGV[8]]) is also
-- dropped past ARGV[7] bytes of Redis's memory: under `most` fields of up to `longest` bytes it held a GB, which
-- HGETALL copied into this script at every exchange of every gateway before any field was looked at (session 35).
local bounded, budget = tonumber(ARGV[8]), tonumber(ARGV[7])
for k = 1, #KEYS do
  local drop = redis.call('HLEN', KEYS[k]) > most
  if not drop and k == bounded then
    local ok, size = pcall(redis.call, 'MEMORY', 'USAGE', KEYS[k], 'SAMPLES', '0')
    drop = ok and size and size > budget  -- (MEMORY refused to this user: bounded by `most` only)
  end
  if drop then redis.call('DEL', KEYS[k]) end
end
redis.call('HSET', KEYS[1], ARGV[1], now .. ' ' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
local out = {now, 0}
local kept = 0
for k = 1, #KEYS do
  local all = redis.call('HGETALL', KEYS[k])
  for i = 1, #all, 2 do
    local v = all[i + 1]
    local sp = string.find(v, ' ', 1, true)
    local at = sp and string.match(string.sub(v, 1, sp - 1), '^%d+$')
    at = at and tonumber(at)
    -- (a stamp after now or a field past `longest` bytes is not this script's: a forged field never aging out; a
    -- stamp that is not whole milliseconds, `1.5e12` or `<now>.5` from a worker's user, failed every gateway's
    -- exchange in Python's int() while it lived, before review32a)
    if not at or now - at > ttl or at > now or #v > longest then
      redis.call('HDEL', KEYS[k], all[i])
    elseif (k > 1 or all[i] ~= ARGV[1]) and kept < tonumber(ARGV[4]) then
      out[#out + 1] = all[i]
      out[#out + 1] = v
      kept = kept + 1
      if k == 1 then out[2] = out[2] + 1 end
    end
  end
end
return out
"""

MAX_REPLICAS = 1000  # fields returned per exchange at most: bounds what one read can cost
MAX_FIELDS = 4 * MAX_REPLICAS  # a hash with more is dropped (see the script)
MAX_FIELD_BYTES = 256 << 10  # a longer field is dropped: a replica's statistics are a few hundred bytes a model
# The workers' hash (any worker's Redis user may write it) is dropped past this much of Redis's memory: a worker's
# entry is ~300 bytes a model it serves, so 2 MiB holds a few thousand workers' entries. Planted 1,000 fields of
# 250 KB made one gateway exchange take 2.97 s of Redis's CPU and 409 MB sent (bench/RESULTS.md, session 35, obs6).
MAX_WORKERS_BYTES = 2 << 20


class RedisBoard:
    def __init__(self, url: str, key: str, *, timeout: float, read_also: str | None = None,
                 workers: str | None = None) -> None:
        """`workers`: the workers' hash (untrusted writers), bounded by MAX_WORKERS_BYTES: `key` or `read_also`."""
        self.key = key
        self.keys = [key] if read_also is None else [key, read_also]
        self.bounded = self.keys.index(workers) + 1 if workers in self.keys else 0
        self.client: Any = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._script = self.client.register_script(SCRIPT)

    async def exchange(self, replica: str, payload: bytes,
                       ttl_ms: int) -> tuple[int, list[tuple[str, int, bytes, bool]]]:
        """Publish `payload`; (Redis time in ms, [(replica, its publish time in ms, its payload, whether it came
        from the read-only hash)])."""
        res = await self._script(keys=self.keys, args=[replica, payload, ttl_ms, MAX_REPLICAS, MAX_FIELDS,
                                                                MAX_FIELD_BYTES, MAX_WORKERS_BYTES, self.bounded])
        now, own = int(res[0]), int(res[1])
        out: list[tuple[str, int, bytes, bool]] = []
        for n, i in enumerate(range(2, len(res) - 1, 2)):
            rid = res[i].decode("utf-8", "replace") if isinstance(res[i], bytes) else str(res[i])
            stamp, _, body = bytes(res[i + 1]).partition(b" ")
            out.append((rid, int(stamp), body, n >= own))
        return now, out

    async def leave(self, replica: str) -> None:
        """Take this replica off the board at once (a clean shutdown), rather than after its TTL."""
        await self.client.hdel(self.key, replica)

    async def close(self) -> None:
        await self.client.aclose()
