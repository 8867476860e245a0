"""The Lua scripts of the Redis budget store (`store_redis.py`): the store's epoch, the admission and settlement
script, the restore of a gateway's settled spend after Redis came back empty, and the renewal of reservations. Each
runs atomically in Redis; their arguments are words the store builds from config names and digests, never client
text."""

from __future__ import annotations

# The store's epoch and its copy: both gone, Redis lost its data (a new epoch: the gateways RESTORE). The epoch key
# gone alone (evicted under `allkeys-*`, deleted) lost no spend: put back from the copy (before review29c every
# gateway added its share again, on top of counters that still held it: counted twice).
EPOCH = """
local function EPOCH(ekey, fresh)
  local copy = ekey .. ':copy'
  local epoch = redis.call('GET', ekey)
  if not epoch then
    epoch = redis.call('GET', copy) or fresh
    redis.call('SET', ekey, epoch)
  end
  if redis.call('EXISTS', copy) == 0 then redis.call('SET', copy, epoch) end
  return epoch
end
"""

# An increment of a counter's field that meets a value Redis will not add to (a word, `1.5` in a count, ` 5`, `1e400`,
# `inf`: Lua's `tonumber` reads most of these, HINCRBY/HINCRBYFLOAT refuse them) starts the field from 0, and one
# that meets a key of another type starts from no key: what deleting them would do. Only a write from outside makes
# either; before review32a the refusal failed the whole script call, so every request of the budget (and every
# admission riding in the same call) was a 503 until the counter expired, and for ever under a string with no TTL.
ADD = """
local function add(key, field, amt, float)
  local cmd = float and 'HINCRBYFLOAT' or 'HINCRBY'
  local r = redis.pcall(cmd, key, field, amt)
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'WRONGTYPE', 1, true) then redis.call('DEL', key) else redis.call('HSET', key, field, '0') end
    r = redis.call(cmd, key, field, amt)  -- (an error of the call itself, OOM say, raises as before)
  end
  return r
end
"""

# The keys every admission call reads besides the counters, and their types: one of another type (written from
# outside) failed every call of the store, for every budget, for ever (no TTL); the store deletes it once a call
# failed with WRONGTYPE (store_redis._run), which costs the calls that succeed nothing. ARGV: key type, ...
REPAIR = """
local n = 0
for i = 1, #ARGV, 2 do
  local t = redis.call('TYPE', ARGV[i])['ok']
  if t ~= 'none' and t ~= ARGV[i + 1] then
    redis.call('DEL', ARGV[i])
    n = n + 1
  end
end
return n
"""

# ARGV: ekey fresh since -> {the store's epoch, Redis's time, the next look's `since`, then per counter settled after
# `since` ("[score": at or after it; up to 2,048): member "key slot", settled usd, settled tokens, seconds to live} (the watcher's look, with the
# script's rule for a missing epoch; members older than any window are dropped)
LOOK = EPOCH + """
local epoch = EPOCH(ARGV[1], ARGV[2])
local tm = redis.call('TIME')
local rnow = tonumber(tm[1]) + tonumber(tm[2]) / 1000000
local recent = ARGV[1] .. ':recent'
-- A member leaves with its counter's slot (`:ends`, by when the key would expire: a rolling window's slots close in
-- minutes, and were kept 33 days before review30c, 121 bytes each: a `{rolling: 1m}` budget at one request a second
-- held 2.85M members, 345 MB); 33 days for a member from before `:ends`
local ends = recent .. ':ends'
local gone = redis.call('ZRANGEBYSCORE', ends, '-inf', rnow, 'LIMIT', 0, 4096)
if #gone > 0 then
  redis.call('ZREM', recent, unpack(gone))
  redis.call('ZREM', ends, unpack(gone))
end
redis.call('ZREMRANGEBYSCORE', recent, '-inf', rnow - 33 * 86400)
local lo = ARGV[3]
if string.sub(lo, 1, 1) == '[' then lo = string.sub(lo, 2) else lo = '(' .. lo end
local m = redis.call('ZRANGEBYSCORE', recent, lo, '+inf', 'WITHSCORES', 'LIMIT', 0, 2048)
local out = {epoch, string.format('%.6f', rnow), string.format('%.6f', rnow)}
-- settled + counted dead (`d`/`e`: a killed gateway's reservation kept as spent, dead_reservations: count): both are
-- spend to add back; `s` alone before session 36 (costs8), and an emptied Redis forgot every dead share. A field
-- that is not a number is passed on as read (the mirror skips it), a `d` that is not one adds nothing
local function plus(a, b)
  local x, y = tonumber(a or '0'), tonumber(b or '0')
  if x == nil or y == nil or not (y > 0 and y < math.huge) then return a or '0' end
  return string.format('%.17g', x + y)
end
for i = 1, #m, 2 do
  local key, slot = string.match(m[i], '^(%S+) (%S+)$')
  -- (a counter's key of another type, written from outside, failed every later look before review32a: skipped)
  local v = key and redis.pcall('HMGET', key, 's' .. slot, 'k' .. slot, 'd' .. slot, 'e' .. slot)
  if v and not v.err then
    out[#out + 1] = m[i]
    out[#out + 1] = plus(v[1], v[3])
    out[#out + 1] = plus(v[2], v[4])
    out[#out + 1] = redis.call('TTL', key)
  end
end
-- A full page: the next look reads on from its last score, that score included: the counters of one settlement call
-- share its score, and the rest of a call a page cut in two were skipped before review30c (a page of one score alone
-- reads on after it, or the looks would read that page again and again)
if #m == 4096 then out[3] = (m[2] == m[#m] and '' or '[') .. m[#m] end
return out
"""

# ARGV: now zkey rprefix sprefix settled_ttl fits minute frac nsettle count_dead ekey epoch fresh, then nsettle
# settlement strings, then one string per admission. Each string holds words separated by spaces (one
# argument per request for redis-py to encode, not thirty):
#   settlement: rid nb nr, 7 per budget (key slot reserved_usd reserved_tok usd tok expire_s),
#               3 per rate (key minute tok); `rid -1 0` releases whatever the request reserved
#   admission:  rid deadline nb nr, 8 per budget (key slot nslots usd_limit tok_limit usd tok
#               expire_s), 4 per rate (key rpm tpm tok)
# Returns {settlement results (1 settled, 0 already settled), admission results (0 admitted, or
# {kind, index, what, used, oldest slot[, cur, prev]}), Redis's time, the store's epoch}, or {'epoch', the store's
# epoch} and nothing done when `epoch` (the one the gateway last saw; '' for none yet) is not the store's.
SCRIPT = EPOCH + ADD + """
local now = tonumber(ARGV[1])
-- Reservation deadlines are on Redis's clock: the gateway's `now` only says how far ahead a deadline is. On the
-- gateways' clocks, one running ahead of the others by more than reservation_ttl swept their live reservations
-- (every call gives back what is past its `now`), and the budget admitted past its cap in their place.
local tm = redis.call('TIME')
local rnow = tonumber(tm[1]) + tonumber(tm[2]) / 1000000
local zkey, rprefix, sprefix, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local fits = ARGV[6] == '1'
local minute, frac = tonumber(ARGV[7]), tonumber(ARGV[8])
local nsettle = tonumber(ARGV[9])
local count_dead = ARGV[10] == '1'
local w = 1 - frac
local epoch = EPOCH(ARGV[11], ARGV[13])
local recent = ARGV[11] .. ':recent'  -- the counters settled lately, by when (spend_mirror.py)
if ARGV[12] ~= '' and ARGV[12] ~= epoch then
  return {'epoch', epoch}
end

local function words(s)
  local t = {}
  for x in string.gmatch(s, '%S+') do t[#t + 1] = x end
  return t
end

-- (a reservation's record is this script's: one planted with a word or a non-finite amount, or a record of another
-- type, stopped every call before review32a, the sweep being in every call; such a record gives back nothing)
-- what reservation `r` holds, added to each counter's fields `uf`/`tf` of its slot, times `sign`; `seen`: the
-- counter is marked settled lately, so the gateways' mirrors sample it (a dead share counted, spend_mirror.py)
local function move(r, uf, tf, sign, seen)
  local h = redis.pcall('HGETALL', rprefix .. r)
  if h.err then h = {} end
  for i = 1, #h, 2 do
    local slot, u, t = string.match(h[i + 1], '^(%d+) (%S+) (%d+)$')
    local nu = tonumber(u)
    if slot and nu and nu >= 0 and nu < math.huge and #t <= 15 and redis.call('EXISTS', h[i]) == 1 then
      if u ~= '0' then add(h[i], uf .. slot, sign * nu, true) end
      if t ~= '0' then add(h[i], tf .. slot, (sign < 0 and '-' or '') .. t) end
      if seen then
        local left = redis.call('TTL', h[i])
        redis.call('ZADD', recent, rnow, h[i] .. ' ' .. slot)
        if left > 0 then redis.call('ZADD', recent .. ':ends', 'GT', rnow + left, h[i] .. ' ' .. slot) end
      end
    end
  end
end

local function give_back(r)
  move(r, 'u', 't', -1)
  redis.call('DEL', rprefix .. r)
  redis.call('ZREM', zkey, r)
end

local function sweep()
  local dead = redis.call('ZRANGEBYSCORE', zkey, '-inf', rnow, 'LIMIT', 0, 16)
  for _, r in ipairs(dead) do
    if count_dead then
      -- (dead_reservations: count) it stays spent; its record stays until it expires, so that a settlement
      -- that still comes replaces it rather than adding to it. Its share is also kept apart (`d`/`e`): a refusal
      -- tells reservations in flight (`u` - `s` - `d`) from spend, this among spend (refusals.py)
      move(r, 'd', 'e', 1, true)
      redis.call('ZREM', zkey, r)
    else
      give_back(r)
    end
  end
end

local function settle(a)
  local rid, nb, nr = a[1], tonumber(a[2]), tonumber(a[3])
  if not redis.call('SET', sprefix .. rid, '1', 'NX', 'EX', ttl) then
    return 0
  end
  if nb < 0 then  -- a release: the admission's answer was lost, whatever it reserved is given back
    if redis.call('ZSCORE', zkey, rid) then
      give_back(rid)
    elseif redis.call('EXISTS', rprefix .. rid) == 1 then
      -- counted past its deadline (dead_reservations: count): its `d`/`e` share goes too (review35c: it stayed,
      -- and refusals took that much of later reservations in flight for spend)
      move(rid, 'd', 'e', -1, true)
      give_back(rid)
    end
    return 1
  end
  local live = redis.call('ZREM', zkey, rid) == 1
  local dead = false  -- counted past its deadline (dead_reservations: count): its `d`/`e` share goes too
  if not live and redis.call('EXISTS', rprefix .. rid) == 1 then live, dead = true, true end
  if live then redis.call('DEL', rprefix .. rid) end
  for i = 0, nb - 1 do
    local b = 4 + i * 7
    local key, slot = a[b], a[b + 1]
    local du, dt = tonumber(a[b + 4]), tonumber(a[b + 5])
    if live then
      du = du - tonumber(a[b + 2])
      dt = dt - tonumber(a[b + 3])
      if dead and a[b + 2] ~= '0' then add(key, 'd' .. slot, -tonumber(a[b + 2]), true) end
      if dead and a[b + 3] ~= '0' then add(key, 'e' .. slot, '-' .. a[b + 3]) end
    end
    if du ~= 0 then add(key, 'u' .. slot, du, true) end
    if dt ~= 0 then add(key, 't' .. slot, dt) end
    -- the settled spend alone, which the gateways mirror (spend_mirror.py) to add back should Redis come back empty
    if a[b + 4] ~= '0' then add(key, 's' .. slot, a[b + 4], true) end
    if a[b + 5] ~= '0' then add(key, 'k' .. slot, a[b + 5]) end
    if dead or a[b + 4] ~= '0' or a[b + 5] ~= '0' then  -- (dead: its `d` share replaced, the mirrors' sample too)
      redis.call('ZADD', recent, rnow, key .. ' ' .. slot)
      redis.call('ZADD', recent .. ':ends', 'GT', rnow + tonumber(a[b + 6]), key .. ' ' .. slot)
    end
    if du ~= 0 or dt ~= 0 or a[b + 4] ~= '0' or a[b + 5] ~= '0' then redis.call('EXPIRE', key, a[b + 6]) end
  end
  for i = 0, nr - 1 do
    local r = 4 + nb * 7 + i * 3
    if a[r + 2] ~= '0' and redis.call('EXISTS', a[r]) == 1 then
      add(a[r], 't' .. a[r + 1], a[r + 2])
    end
  end
  return 1
end

-- A counter's field as counted: one below zero or not a number (NaN included) is set to 0 where it stands. Only a
-- write from outside makes one (settlements and give-backs take off what was added): whoever can write the store's
-- keys (another deployment on the same Redis without an ACL user of its own) set a counter to -1000000 and every
-- later admission was taken off that credit (before session 32: 8 of 8 admitted past a spent $0.01 cap); a word
-- there made every request of the budget a 503 until the counter expired. Now such a write does what deleting the
-- counter does.
local function counted(key, field, raw)
  local x = tonumber(raw)
  if x and x >= 0 and x < math.huge then return x end
  if raw then redis.call('HSET', key, field, '0') end
  return 0
end

local function counters(key, fields)
  local v = redis.pcall('HMGET', key, unpack(fields))
  if v.err then  -- another type: as if it were not there
    redis.call('DEL', key)
    v = {}
  end
  for i = 1, #fields do v[i] = counted(key, fields[i], v[i]) end
  return v
end

local function check(a, b0, nb, r0, nr)
  for i = 0, nb - 1 do
    local b = b0 + i * 8
    local key, slot, nslots = a[b], tonumber(a[b + 1]), tonumber(a[b + 2])
    local ulim, tlim = tonumber(a[b + 3]), tonumber(a[b + 4])
    local uamt, tamt = tonumber(a[b + 5]), tonumber(a[b + 6])
    local u, t, oldest = 0, 0, -1
    if nslots == 1 then
      local v = counters(key, {'u' .. slot, 't' .. slot})
      u, t = v[1], v[2]
      oldest = slot
    else
      local h = redis.pcall('HGETALL', key)
      if h.err then
        redis.call('DEL', key)
        h = {}
      end
      local lo = slot - nslots + 1
      for j = 1, #h, 2 do
        local s = tonumber(string.sub(h[j], 2))
        if not s or s < lo then
          redis.call('HDEL', key, h[j])
        else
          local v, c = counted(key, h[j], h[j + 1]), string.sub(h[j], 1, 1)
          if c == 'u' then u = u + v elseif c == 't' then t = t + v end
          if v > 0 and (c == 'u' or c == 't') and (oldest < 0 or s < oldest) then oldest = s end
        end
      end
    end
    if ulim >= 0 and ((fits and u + uamt > ulim + 1e-12) or ((not fits) and u >= ulim - 1e-12)) then
      return {'budget', i, 'usd', tostring(u), oldest}
    end
    if tlim >= 0 and ((fits and t + tamt > tlim) or ((not fits) and t >= tlim)) then
      return {'budget', i, 'tokens', tostring(t), oldest}
    end
  end
  for i = 0, nr - 1 do
    local r = r0 + i * 4
    local key, rpm, tpm, tamt = a[r], tonumber(a[r + 1]), tonumber(a[r + 2]), tonumber(a[r + 3])
    local v = counters(key, {'r' .. minute, 'r' .. (minute - 1), 't' .. minute, 't' .. (minute - 1)})
    local cr, pr, ct, pt = v[1], v[2], v[3], v[4]
    if rpm >= 0 and pr * w + cr + 1 > rpm then
      return {'rate', i, 'requests', tostring(pr * w + cr), -1, tostring(cr), tostring(pr)}
    end
    local et = pt * w + ct
    if tpm >= 0 and et > 0 and et + tamt > tpm then
      return {'rate', i, 'tokens', tostring(et), -1, tostring(ct), tostring(pt)}
    end
  end
  return nil
end

local function admit(a)
  local rid, deadline = a[1], a[2]
  -- Settled or released already: this is an admission whose reply the gateway never read (a frozen Redis),
  -- run after the release that the gateway sent on another connection once Redis was back. It reserves
  -- nothing (before, it held a reservation nobody would settle until its deadline).
  if redis.call('EXISTS', sprefix .. rid) == 1 then return 0 end
  local nb, nr = tonumber(a[3]), tonumber(a[4])
  local b0, r0 = 5, 5 + nb * 8
  local refusal = check(a, b0, nb, r0, nr)
  if refusal then return refusal end
  local held = false
  for i = 0, nb - 1 do
    local b = b0 + i * 8
    local key, slot, uamt, tamt = a[b], a[b + 1], a[b + 5], a[b + 6]
    if uamt ~= '0' then add(key, 'u' .. slot, uamt, true) end
    if tamt ~= '0' then add(key, 't' .. slot, tamt) end
    if uamt ~= '0' or tamt ~= '0' then
      redis.call('EXPIRE', key, a[b + 7])
      redis.call('HSET', rprefix .. rid, key, slot .. ' ' .. uamt .. ' ' .. tamt)
      held = true
    end
  end
  if held then
    redis.call('EXPIRE', rprefix .. rid, math.floor(tonumber(deadline) - now) + 3600)
    redis.call('ZADD', zkey, rnow + (tonumber(deadline) - now), rid)
  end
  for i = 0, nr - 1 do
    local r = r0 + i * 4
    local key = a[r]
    add(key, 'r' .. minute, 1)
    if a[r + 3] ~= '0' then add(key, 't' .. minute, a[r + 3]) end
    redis.call('HDEL', key, 'r' .. (minute - 2), 't' .. (minute - 2))
    redis.call('EXPIRE', key, 180)
  end
  return 0
end

local settled, admitted = {}, {}
for n = 1, nsettle do settled[n] = settle(words(ARGV[13 + n])) end
sweep()
for n = 1, #ARGV - 13 - nsettle do admitted[n] = admit(words(ARGV[13 + nsettle + n])) end
return {settled, admitted, string.format('%.6f', rnow), epoch}  -- Redis's clock: the gateways' windows follow it
"""

# ARGV: ekey epoch base member base_ttl, then one "key slot usd tok own_usd own_tok expire_s" per counter: a gateway's
# offers of what the counter's settled spend was at the loss (spend_mirror.py), taken once per (epoch, member), while
# the store's epoch is `epoch` (0: it moved on; the caller learns the new one). The counter gets the larger of the
# largest first offer and the sum of the second ones (kept per counter in `base`).
RESTORE = ADD + """
if redis.call('GET', ARGV[1]) ~= ARGV[2] then return 0 end
local base = ARGV[3]
if redis.call('HSETNX', base, 'member ' .. ARGV[4], '1') == 0 then return 1 end
local tm = redis.call('TIME')
local rnow = tonumber(tm[1]) + tonumber(tm[2]) / 1000000
local recent = ARGV[1] .. ':recent'
for i = 6, #ARGV do
  local key, slot, u, t, ou, ot, ex = string.match(ARGV[i], '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
  if key then
    local f = key .. ' ' .. slot
    local v = redis.call('HMGET', base, f .. ' mu', f .. ' su', f .. ' mt', f .. ' st')
    local mu, su, mt, st = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0
    local nmu, nsu = math.max(mu, tonumber(u)), su + tonumber(ou)
    local nmt, nst = math.max(mt, tonumber(t)), st + tonumber(ot)
    local du = math.max(nmu, nsu) - math.max(mu, su)
    local dt = math.max(nmt, nst) - math.max(mt, st)
    redis.call('HSET', base, f .. ' mu', tostring(nmu), f .. ' su', tostring(nsu), f .. ' mt', nmt, f .. ' st', nst)
    if du > 0 then
      add(key, 'u' .. slot, du, true)
      add(key, 's' .. slot, du, true)
    end
    if dt > 0 then
      add(key, 't' .. slot, dt)
      add(key, 'k' .. slot, dt)
    end
    if du > 0 or dt > 0 then
      -- (only lengthened: an older offer of the counter, a process stopped long ago, expires sooner, and offered
      -- after the newer ones it left the restored spend minutes to live before review33b)
      local left = redis.call('TTL', key)
      if left < 0 or left < tonumber(ex) then redis.call('EXPIRE', key, ex) end
      redis.call('ZADD', recent, rnow, f)
      redis.call('ZADD', recent .. ':ends', 'GT', rnow + tonumber(ex), f)
    end
  end
end
redis.call('EXPIRE', base, ARGV[5])
return 1
"""


# ARGV: ekey epoch zkey rprefix sprefix, then one "rid hold_s key slot usd tok expire_s..." per request of this
# gateway still in flight: its reservation held again in a store that came back empty (before session 30, costs2,
# reservations in flight were lost with it, and the budget admitted past its cap while they ran). Once per request
# (one already held, settled or released is left alone); 0 when the store's epoch is not `epoch`.
REHOLD = ADD + """
if redis.call('GET', ARGV[1]) ~= ARGV[2] then return 0 end
local tm = redis.call('TIME')
local rnow = tonumber(tm[1]) + tonumber(tm[2]) / 1000000
local zkey, rprefix, sprefix = ARGV[3], ARGV[4], ARGV[5]
for i = 6, #ARGV do
  local a = {}
  for x in string.gmatch(ARGV[i], '%S+') do a[#a + 1] = x end
  local rid, hold = a[1], tonumber(a[2])
  if rid and hold and redis.call('EXISTS', rprefix .. rid) == 0 and redis.call('EXISTS', sprefix .. rid) == 0 then
    for b = 3, #a - 4, 5 do
      local key, slot, u, t = a[b], a[b + 1], a[b + 2], a[b + 3]
      if u ~= '0' then add(key, 'u' .. slot, u, true) end
      if t ~= '0' then add(key, 't' .. slot, t) end
      redis.call('EXPIRE', key, a[b + 4])
      redis.call('HSET', rprefix .. rid, key, slot .. ' ' .. u .. ' ' .. t)
    end
    redis.call('EXPIRE', rprefix .. rid, math.floor(hold) + 3600)
    redis.call('ZADD', zkey, rnow + hold, rid)
  end
end
return 1
"""


# ARGV: zkey rprefix ttl hold_s rid...: each still-reserved rid's deadline to Redis's now + ttl (never earlier).
RENEW = """
local tm = redis.call('TIME')
local deadline = tonumber(tm[1]) + tonumber(tm[2]) / 1000000 + tonumber(ARGV[3])
for i = 5, #ARGV do
  redis.call('ZADD', ARGV[1], 'XX', 'GT', deadline, ARGV[i])
  redis.call('EXPIRE', ARGV[2] .. ARGV[i], ARGV[4])
end
return 0
"""
