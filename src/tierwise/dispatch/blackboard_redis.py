"""The blackboard's Redis transport: one hash, one field per replica, one round trip per exchange.

`exchange` runs one Lua script: it stamps this replica's statistics with Redis's own clock
(so replicas on hosts with skewed clocks agree on ages), drops the fields of replicas that have
not published for `ttl` (a killed gateway vanishes within its TTL), and returns every other
live replica's statistics. The hash itself expires when no replica renews it.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

# KEYS[1]: the board hash. ARGV: replica id, payload (JSON), ttl_ms, max entries returned.
# Returns {server time ms, id1, "stamp json1", id2, "stamp json2", ...} without this replica's own field.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], now .. ' ' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
local all = redis.call('HGETALL', KEYS[1])
local out = {now}
local kept = 0
for i = 1, #all, 2 do
  local v = all[i + 1]
  local sp = string.find(v, ' ', 1, true)
  local at = sp and tonumber(string.sub(v, 1, sp - 1))
  if not at or now - at > ttl then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] and kept < tonumber(ARGV[4]) then
    out[#out + 1] = all[i]
    out[#out + 1] = v
    kept = kept + 1
  end
end
return out
"""

MAX_REPLICAS = 1000  # fields returned per exchange at most: bounds what one read can cost


class RedisBoard:
    def __init__(self, url: str, key: str, *, timeout: float) -> None:
        self.key = key
        self.client: Any = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._script = self.client.register_script(SCRIPT)

    async def exchange(self, replica: str, payload: bytes, ttl_ms: int) -> tuple[int, list[tuple[str, int, bytes]]]:
        """Publish `payload`; (Redis time in ms, [(replica, its publish time in ms, its payload)])."""
        res = await self._script(keys=[self.key], args=[replica, payload, ttl_ms, MAX_REPLICAS])
        now = int(res[0])
        out: list[tuple[str, int, bytes]] = []
        for i in range(1, len(res) - 1, 2):
            rid = res[i].decode("utf-8", "replace") if isinstance(res[i], bytes) else str(res[i])
            stamp, _, body = bytes(res[i + 1]).partition(b" ")
            out.append((rid, int(stamp), body))
        return now, out

    async def leave(self, replica: str) -> None:
        """Take this replica off the board at once (a clean shutdown), rather than after its TTL."""
        await self.client.hdel(self.key, replica)

    async def close(self) -> None:
        await self.client.aclose()
