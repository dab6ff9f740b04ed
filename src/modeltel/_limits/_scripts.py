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

# KEYS: rate, budget, leases (one hash tag: one cluster slot)
# ARGV: interval_us, tolerance_us, window ('' = no budget), amount, cost, lease_us, lease_id, grace_s
# -> {0, remaining, window_end, window_start} | {1, wait_us} | {2, remaining, window_end, window_start}
ADMIT_LUA: Final = (
    CALENDAR_LUA
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
local remaining, wstart, wend = -1, -1, 0
if ARGV[3] ~= '' then
  wstart, wend = window_bounds(sec, ARGV[3])
  local amount = tonumber(ARGV[4])
  local cost = tonumber(ARGV[5])
  local state = redis.call('HMGET', KEYS[2], 'w', 'spent', 'reserved')
  local spent, reserved = 0, 0
  if tonumber(state[1]) == wstart then
    spent = tonumber(state[2])
    reserved = tonumber(state[3])
    local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', fmt(now))
    for _, member in ipairs(expired) do
      reserved = reserved - tonumber(string.match(member, ':(%d+)$'))
    end
    if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', fmt(now)) end
  else
    redis.call('DEL', KEYS[3])
  end
  if spent + reserved + cost > amount then
    return {2, fmt(amount - spent - reserved), fmt(wend), fmt(wstart)}
  end
  if cost > 0 then
    redis.call('ZADD', KEYS[3], fmt(now + tonumber(ARGV[6])), ARGV[7] .. ':' .. fmt(cost))
    reserved = reserved + cost
  end
  redis.call('HSET', KEYS[2], 'w', fmt(wstart), 'spent', fmt(spent), 'reserved', fmt(reserved))
  local expire_at = fmt(wend + tonumber(ARGV[8]))
  redis.call('EXPIREAT', KEYS[2], expire_at)
  redis.call('EXPIREAT', KEYS[3], expire_at)
  remaining = amount - spent - reserved
end
if interval > 0 then
  redis.call('SET', KEYS[1], fmt(new_tat), 'PX', fmt(math.ceil((new_tat - now) / 1000)))
end
return {0, fmt(remaining), fmt(wend), fmt(wstart)}
"""
)

# KEYS: budget, leases
# ARGV: window_start, lease member ('' = none), reserved, actual, expire_at
# A settle for an ended window changes nothing; a missing ledger (expired, or lost in a restart)
# is recreated. EXPIREAT in the past deletes the key at once, so a late settle leaves no garbage.
SETTLE_LUA: Final = """
local removed = 0
if ARGV[2] ~= '' then removed = redis.call('ZREM', KEYS[2], ARGV[2]) end
local state = redis.call('HMGET', KEYS[1], 'w', 'spent', 'reserved')
if state[1] and state[1] ~= ARGV[1] then return 0 end
local spent = tonumber(state[2] or '0') + tonumber(ARGV[4])
local reserved = tonumber(state[3] or '0')
if removed == 1 then reserved = reserved - tonumber(ARGV[3]) end
redis.call('HSET', KEYS[1], 'w', ARGV[1], 'spent', string.format('%.0f', spent),
           'reserved', string.format('%.0f', reserved))
redis.call('EXPIREAT', KEYS[1], ARGV[5])
return 1
"""
