"""The Lua scripts the Redis backend runs: one admit (rate + budget, atomic) and one settle.

Time comes from ``redis.call('TIME')`` so every replica is judged by one clock. Lua numbers are
doubles: all values here are integers below 2**53 (µs since 1970 ~ 1.8e15, budgets in
micro-units <= 9e15), and every number written back is formatted with ``%.0f`` because Lua's
default number formatting keeps only 14 significant digits.
"""

from __future__ import annotations

from typing import Final

# Howard Hinnant's civil-calendar algorithms: UTC month boundaries without os.date (not in
# Redis' sandbox).
CALENDAR_LUA: Final = """
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)
  yoe = math.floor(yoe / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function window_bounds(sec, kind)
  if kind == 'hour' then local s = sec - sec % 3600; return s, s + 3600 end
  if kind == 'day' then local s = sec - sec % 86400; return s, s + 86400 end
  local y, m = civil_from_days(math.floor(sec / 86400))
  local ny, nm = y, m + 1
  if nm == 13 then ny, nm = y + 1, 1 end
  return days_from_civil(y, m, 1) * 86400, days_from_civil(ny, nm, 1) * 86400
end
local function fmt(x) return string.format('%.0f', x) end
"""

# What a replica knows of its own spend in the current window, passed with every admit and
# settle so that a ledger lost by Redis (restart without persistence, failover, FLUSHALL) is
# rebuilt inside the same atomic script that decides, without an extra round trip. A ledger's
# epoch ('e', the server time it was created at) tells a replica whether the ledger it last saw
# is still there; 'c:<replica>' marks a replica whose spend is already in this ledger; 'r' sums
# those contributions and 'f' is the largest total any of them had last seen. The ledger's
# total is spent + reserved + max(0, f - r): never less than what any replica last saw, nor
# than what the replicas that re-contributed spent themselves.
RECOVER_LUA: Final = """
-- view: 'window:epoch:own:seen:unsynced' ('' when the replica knows nothing of this tenant)
local function parse_view(view)
  local w, e, own, seen, unsynced = string.match(view, '^([^:]*):([^:]*):([^:]*):([^:]*):([^:]*)$')
  if not w then return nil end
  return {w = w, e = e, own = tonumber(own), seen = tonumber(seen), unsynced = tonumber(unsynced)}
end
local function recover(ledger, epoch, wstart, spent, recon, floor, id, v)
  if not v or v.w ~= fmt(wstart) then return spent, recon, floor end
  if v.e ~= epoch and redis.call('HSETNX', ledger, 'c:' .. id, '1') == 1 then
    spent = spent + v.own
    recon = recon + v.own
    if v.seen > floor then floor = v.seen end
  else
    spent = spent + v.unsynced
  end
  if spent < 0 then spent = 0 end
  return spent, recon, floor
end
local function extra(recon, floor)
  if floor > recon then return floor - recon end
  return 0
end
"""

# KEYS: rate, budget, leases (one hash tag: one cluster slot)
# ARGV: interval_us, tolerance_us, window ('' = no budget), amount, cost, lease_us, lease_id,
#       grace_s, replica id, the replica's view (window start:epoch:own spend:last total
#       seen:unsynced, or '')
# -> {0, remaining, window_end, window_start, epoch} | {1, wait_us}
#    | {2, remaining, window_end, window_start, epoch}
ADMIT_LUA: Final = (
    CALENDAR_LUA
    + RECOVER_LUA
    + """
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now = sec * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local new_tat = 0
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  new_tat = tat + interval
  local wait = new_tat - tonumber(ARGV[2]) - now
  if wait > 0 then return {1, fmt(wait)} end
end
local remaining, wstart, wend, epoch = -1, -1, 0, ''
if ARGV[3] ~= '' then
  wstart, wend = window_bounds(sec, ARGV[3])
  local amount = tonumber(ARGV[4])
  local cost = tonumber(ARGV[5])
  local state = redis.call('HMGET', KEYS[2], 'w', 'spent', 'reserved', 'e', 'r', 'f')
  local spent, reserved, recon, floor = 0, 0, 0, 0
  if tonumber(state[1]) == wstart then
    spent, reserved = tonumber(state[2]), tonumber(state[3])
    epoch, recon, floor = state[4] or fmt(now), tonumber(state[5] or '0'), tonumber(state[6] or '0')
    local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', fmt(now))
    for _, member in ipairs(expired) do
      reserved = reserved - tonumber(string.match(member, ':(%d+)$'))
    end
    if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', fmt(now)) end
  else
    redis.call('DEL', KEYS[2], KEYS[3])
    epoch = fmt(now)
  end
  spent, recon, floor = recover(KEYS[2], epoch, wstart, spent, recon, floor, ARGV[9], parse_view(ARGV[10]))
  local used = spent + reserved + extra(recon, floor)
  local admit = used + cost <= amount
  if admit and cost > 0 then
    redis.call('ZADD', KEYS[3], fmt(now + tonumber(ARGV[6])), ARGV[7] .. ':' .. fmt(cost))
    reserved = reserved + cost
    used = used + cost
  end
  redis.call('HSET', KEYS[2], 'w', fmt(wstart), 'spent', fmt(spent), 'reserved', fmt(reserved),
             'e', epoch, 'r', fmt(recon), 'f', fmt(floor))
  local expire_at = fmt(wend + tonumber(ARGV[8]))
  redis.call('EXPIREAT', KEYS[2], expire_at)
  if admit and cost > 0 then redis.call('EXPIREAT', KEYS[3], expire_at) end
  if not admit then return {2, fmt(amount - used), fmt(wend), fmt(wstart), epoch} end
  remaining = amount - used
end
if interval > 0 then
  redis.call('SET', KEYS[1], fmt(new_tat), 'PX', fmt(math.ceil((new_tat - now) / 1000)))
end
return {0, fmt(remaining), fmt(wend), fmt(wstart), epoch}
"""
)

# KEYS: budget, leases
# ARGV: window_start, lease member ('' = none), reserved, actual, expire_at, the epoch the
#       reservation was made in, replica id, the replica's view (as for admit; its own spend
#       includes this settle)
# -> {0} (the window has ended) | {1, epoch}
# A reservation made in a ledger that has since been lost is no longer held anywhere: the
# replica's own spend, which counts it, is re-contributed (or was, by an earlier call), so the
# settle only charges the difference. EXPIREAT in the past deletes the key at once, so a late
# settle leaves no garbage.
SETTLE_LUA: Final = (
    "local function fmt(x) return string.format('%.0f', x) end\n"
    + RECOVER_LUA
    + """
local removed = 0
if ARGV[2] ~= '' then removed = redis.call('ZREM', KEYS[2], ARGV[2]) end
local state = redis.call('HMGET', KEYS[1], 'w', 'spent', 'reserved', 'e', 'r', 'f')
if state[1] and state[1] ~= ARGV[1] then return {0} end
local spent, reserved, recon, floor, epoch = 0, 0, 0, 0, nil
if state[1] then
  spent, reserved = tonumber(state[2]), tonumber(state[3])
  recon, floor, epoch = tonumber(state[5] or '0'), tonumber(state[6] or '0'), state[4]
end
if not epoch then
  local t = redis.call('TIME')
  epoch = fmt(tonumber(t[1]) * 1000000 + tonumber(t[2]))
end
local actual = tonumber(ARGV[4])
local view = parse_view(ARGV[8])
if epoch == ARGV[6] then
  spent = spent + actual
  if removed == 1 then reserved = reserved - tonumber(ARGV[3]) end
  spent, recon, floor = recover(KEYS[1], epoch, tonumber(ARGV[1]), spent, recon, floor, ARGV[7], view)
elseif redis.call('HEXISTS', KEYS[1], 'c:' .. ARGV[7]) == 1 then
  spent = spent + actual - tonumber(ARGV[3]) + (view and view.unsynced or 0)
  if spent < 0 then spent = 0 end
else
  spent, recon, floor = recover(KEYS[1], epoch, tonumber(ARGV[1]), spent, recon, floor, ARGV[7], view)
end
redis.call('HSET', KEYS[1], 'w', ARGV[1], 'spent', fmt(spent), 'reserved', fmt(reserved),
           'e', epoch, 'r', fmt(recon), 'f', fmt(floor))
redis.call('EXPIREAT', KEYS[1], ARGV[5])
return {1, epoch}
"""
)
