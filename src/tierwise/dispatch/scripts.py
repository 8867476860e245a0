"""The Lua scripts of distributed mode. Each step that must not be seen half-done runs as one
script (atomic on the server, one round trip): publishing a task after checking presence and
back-pressure, taking tasks across priorities without exceeding a worker's free slots,
re-claiming a dead worker's tasks, completing a task (result + dedupe mark + ack), keeping a
running task's claim fresh, and dead-lettering. Every key a script touches is passed in KEYS
and carries the tenant's hash tag (see keys.py), so they also run on Redis Cluster.
"""

from __future__ import annotations

from typing import Any

from tierwise.dispatch.config import PRESENCE_TTL_MAX_S

GROUP = "tierwise-workers"  # (keys.GROUP: the one consumer group of every task queue)
WAKE_MAX = 256  # wake-up tokens kept per caller, capability and zone; more would only wake idle workers for nothing

# An index entry scored further ahead than any heartbeat puts one is not a worker's: a worker may ZADD any score
# (Redis cannot limit it), and one scored 9e15 was counted present for ever, after its worker and its user were
# gone: every task of the capability then waited out its caller's timeout instead of NoWorker (session 36,
# review36d). Such entries are not counted, and are removed with the expired ones.
HORIZON_MS = PRESENCE_TTL_MAX_S * 1000 + 60_000  # (a minute for the worker's clock offset's error)
# KEYS: index, target stream, wake list, every priority stream of the capability and zone, the index of the workers
# reading the caller's queues, the index of the workers that say whose queues they read (keys.py)
# ARGV: max_pending, wake_max, how long the task may wait (ms), field, value, ...
# -> {'ok', entry id, the deadline it was given (Redis's clock, ms)} | {'noworker', 0} | {'full', pending}
#    | {'unlisted', workers present}
# 'unlisted': workers are present and none reads this caller's queues (`dispatch.callers`), so the task would wait
# out its timeout (120 s by default; session 38, dist9); not said while a worker of before session 38 (not in the
# last index) is present, since it may.
# The deadline (`dl`) is stamped with Redis's clock, which workers compare it with: the caller's wall clock and a
# worker's could be minutes apart, and every task then "expired" before it ran (session 36).
# A consumer group whose last-delivered id is past its stream's last id hands out nothing: none is legitimately (a
# group made with `0` or `$` is not), but a worker may XGROUP CREATE with any id (its take script makes the groups of
# new queues; Redis cannot limit the argument), and `… 18446744073709551615-18446744073709551615 MKSTREAM` on a queue
# not published to yet (most of the per-caller ones) had every later task there wait out its timeout (session 37,
# review37a). Only CREATE can put it there, on a stream its group had never read: back to the start loses nothing.
# (Compared with the id just added, which is the stream's last: XINFO STREAM would copy its first and last entries,
# payloads included, at each publish.)
# Presence is compared with Redis's clock, which the workers' heartbeats also use. The expired entries are removed
# here (workers may only ZADD into the index); under a named caller's rules, or a caller's of before session 36 (no
# ZREMRANGEBYSCORE), the pcall is refused and they stay, uncounted.
# `#!lua`: Redis checks `maxmemory` before running a script that says what it is, and a script without a shebang
# only at its first write: here the prune of expired entries, which an unnamed caller's rules allow, so its XADD went
# past `maxmemory` unchecked (40 entries of 1 MB into a Redis of 12 MB, noeviction; session 38, review38b).
ENQUEUE = """#!lua
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local horizon = now + """ + str(HORIZON_MS) + """
local listing, told = KEYS[#KEYS - 1], KEYS[#KEYS]
-- (a caller whose rules refuse the first prune is refused them all: a refused command costs a script several us)
if type(redis.pcall('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)) == 'number' then
  for _, k in ipairs({KEYS[1], listing, told}) do
    redis.pcall('ZREMRANGEBYSCORE', k, '-inf', now)
    redis.pcall('ZREMRANGEBYSCORE', k, '(' .. string.format('%.0f', horizon), '+inf')
  end
end
local present = redis.call('ZCOUNT', KEYS[1], now, horizon)
if present == 0 then return {'noworker', 0} end
if redis.call('ZCOUNT', listing, now, horizon) == 0 and redis.call('ZCOUNT', told, now, horizon) >= present then
  return {'unlisted', present}
end
local pending = 0
for i = 4, #KEYS - 2 do pending = pending + redis.call('XLEN', KEYS[i]) end
if pending >= tonumber(ARGV[1]) then return {'full', pending} end
local function after(a, b)
  local am, as = string.match(a or '', '^(%d+)-(%d+)$')
  local bm, bs = string.match(b or '', '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  if #am ~= #bm then return #am > #bm end
  if am ~= bm then return am > bm end
  if #as ~= #bs then return #as > #bs end
  return as > bs
end
local dl = now + tonumber(ARGV[3])
local id = redis.call('XADD', KEYS[2], '*', 'dl', string.format('%.0f', dl), unpack(ARGV, 4))
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[2])
if type(groups) == 'table' and not groups.err then
  for _, g in ipairs(groups) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f['name'] == '""" + GROUP + """' and after(f['last-delivered-id'], id) then
      redis.call('XGROUP', 'SETID', KEYS[2], '""" + GROUP + """', '0')
    end
  end
end
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[2]) - 1)
return {'ok', id, dl}
"""

# An entry as a worker gets it: whole, or past `maxbytes` (its fields' and values' lengths) only its `id` and `reply`
# (when short) and `oversize` (its length), for the worker to dead-letter it and tell its caller. A caller may XADD its
# queues directly (publishing takes XADD, whose arguments Redis cannot limit), and an entry of 40 MB went whole to
# every worker that took or re-claimed it (session 38, dist9).
_SMALL = """
local function small(fields, maxbytes)
  local size = 0
  for _, v in ipairs(fields) do size = size + #v end
  if size <= maxbytes then return fields end
  local kept = {}
  for i = 1, #fields - 1, 2 do
    if (fields[i] == 'id' or fields[i] == 'reply') and #fields[i + 1] <= 512 then
      kept[#kept + 1] = fields[i]
      kept[#kept + 1] = fields[i + 1]
    end
  end
  kept[#kept + 1] = 'oversize'
  kept[#kept + 1] = tostring(size)
  return kept
end
"""

# Taking tasks, shared by TAKE and COMPLETE: from the `n` streams at KEYS[off+1..off+n] (highest
# priority first) and their wake lists at KEYS[off+n+1..off+2n], at most `want` tasks
# -> {{stream index, entry id, {field, value, ...}}, ...}
# A missing group (a new stream, or a Redis that restarted without its data) is created from
# the stream's start, so tasks published before it existed are still delivered. Each task taken
# removes one wake-up token, so tokens stay about as many as untaken tasks and idle workers are
# not woken for tasks already gone. A take that finds nothing empties the wake lists: a caller may LPUSH its
# own as often as it likes (Redis cannot limit it), and 100,000 tokens with no task behind them woke every idle
# worker of the capability 100,000 times for nothing (session 37, dist8).
_TAKE_FUNCTION = _SMALL + """
local function take(off, n, group, consumer, want, maxbytes)
  local asked = want
  local out = {}
  for i = 1, n do
    if want <= 0 then break end
    local key = KEYS[off + i]
    local r = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want, 'STREAMS', key, '>')
    if type(r) == 'table' and r.err then
      redis.pcall('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
      r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want, 'STREAMS', key, '>')
    end
    if r then
      local got = 0
      for _, e in ipairs(r[1][2]) do
        out[#out + 1] = {i, e[1], small(e[2], maxbytes)}
        got = got + 1
      end
      want = want - got
      if got > 0 then redis.call('LTRIM', KEYS[off + n + i], got, -1) end
    end
  end
  if asked > 0 and #out == 0 then
    for i = 1, n do redis.call('LTRIM', KEYS[off + n + i], 1, 0) end
  end
  return out
end
"""

# KEYS: the streams a worker reads, highest priority first, then the wake list of each (aligned)
# ARGV: group, consumer, how many at most, the largest entry handed out whole (bytes)
TAKE = _TAKE_FUNCTION + """
return take(0, #KEYS / 2, ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
"""

# KEYS: the streams a worker reads, highest priority first
# ARGV: group, consumer, min idle ms, how many at most, the largest entry handed out whole (bytes), then the scan
# cursor of each stream
# -> {{{stream index, entry id, {field, value, ...}, deliveries}, ...}, {next cursor of each stream}}
# XAUTOCLAIM looks at COUNT x 10 pending entries per call: the cursors carry the scan over the
# whole pending list across calls, so a dead worker's tasks deep in it are found too.
RECLAIM = _SMALL + """
local want = tonumber(ARGV[4])
local maxbytes = tonumber(ARGV[5])
local out = {}
local cursors = {}
for i = 1, #KEYS do
  cursors[i] = ARGV[5 + i]
  if want > 0 then
    local r = redis.pcall('XAUTOCLAIM', KEYS[i], ARGV[1], ARGV[2], ARGV[3], ARGV[5 + i], 'COUNT', want)
    if type(r) == 'table' and not r.err then
      cursors[i] = r[1]
      for _, e in ipairs(r[2]) do
        if e[2] then
          local p = redis.call('XPENDING', KEYS[i], ARGV[1], e[1], e[1], 1)
          local n = 1
          if p[1] then n = p[1][4] end
          out[#out + 1] = {i, e[1], small(e[2], maxbytes), n}
          want = want - 1
        end
      end
    else
      cursors[i] = '0-0'
    end
  end
end
return {out, cursors}
"""

# KEYS: stream, done mark, caller's result stream, then (optionally) TAKE's keys
# ARGV: group, entry id, task id, result, done ttl s, results maxlen, results ttl s, consumer, how many to take, the
# largest entry handed out whole (bytes)
# -> {1 when this completion delivered the result (0: the task had been completed already), tasks taken}
# Completing a task and taking the next one for the slot it frees is one round trip.
COMPLETE = _TAKE_FUNCTION + """
local first = redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[5])
if first then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'id', ARGV[3], 'r', ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[7])
end
redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local taken = {}
local want = tonumber(ARGV[9])
if want > 0 and #KEYS > 3 then taken = take(3, (#KEYS - 3) / 2, ARGV[1], ARGV[8], want, tonumber(ARGV[10])) end
if first then return {1, taken} end
return {0, taken}
"""

# KEYS: stream, dead-letter stream
# ARGV: group, entry id, dead-letter maxlen, field, value, ...
DEAD_LETTER = """
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""

# KEYS: the task streams a worker reads, then the wake list of each (aligned)
# ARGV: the most entries a stream keeps (`max_pending`), the most tokens a wake list keeps
# -> {entries removed from each stream}
# Run at each heartbeat. The publishing script keeps a caller's queues of a capability and zone to `max_pending`
# entries in all and its wake list to WAKE_MAX tokens, but a caller may XADD and LPUSH its own directly: 300 XADDs
# past a bound of 5 stayed queued, for workers to run and the blackboard to report as backlog (session 38, dist9).
# The oldest go, as XTRIM does cheaply: only the caller past its bound loses tasks (a caller's own).
BOUND = """
local n = #KEYS / 2
local limit = tonumber(ARGV[1])
local removed = {}
for i = 1, n do
  removed[i] = 0
  local len = redis.pcall('XLEN', KEYS[i])
  if type(len) == 'number' and len > limit then removed[i] = redis.call('XTRIM', KEYS[i], 'MAXLEN', limit) end
  redis.pcall('LTRIM', KEYS[n + i], 0, tonumber(ARGV[2]) - 1)
end
return removed
"""

# KEYS: the stream of each running task (repeats allowed)
# ARGV: group, consumer, entry id of each task (aligned with KEYS)
# -> entry ids this consumer no longer holds (re-claimed elsewhere, withdrawn, or lost by Redis)
# XAUTOCLAIM from the entry's own id, COUNT 1, JUSTID: the entry's idle time restarts and its delivery count does
# not move. Not XCLAIM: its LASTID argument moves the group's last-delivered id, and a worker that may XCLAIM set it
# to 9999999999999-0, after which no task of the queue was ever handed out (session 36, review36d); workers' rules
# no longer allow XCLAIM.
KEEPALIVE = """
local lost = {}
for i = 1, #KEYS do
  local id = ARGV[i + 2]
  local p = redis.pcall('XPENDING', KEYS[i], ARGV[1], id, id, 1)
  if type(p) == 'table' and not p.err and p[1] and p[1][2] == ARGV[2] then
    redis.call('XAUTOCLAIM', KEYS[i], ARGV[1], ARGV[2], 0, id, 'COUNT', 1, 'JUSTID')
  else
    lost[#lost + 1] = id
  end
end
return lost
"""


class Scripts:
    """The scripts registered on one client (redis-py sends EVALSHA and reloads after a restart)."""

    def __init__(self, client: Any) -> None:
        self.enqueue = client.register_script(ENQUEUE)
        self.take = client.register_script(TAKE)
        self.reclaim = client.register_script(RECLAIM)
        self.complete = client.register_script(COMPLETE)
        self.dead_letter = client.register_script(DEAD_LETTER)
        self.keepalive = client.register_script(KEEPALIVE)
        self.bound = client.register_script(BOUND)
