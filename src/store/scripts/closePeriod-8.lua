--[[
closePeriod-8: close the period ending at P, fenced by the lease, once every
live member has merged everything it received in it; periods close in order.

KEYS[1] lease        string  the leader's token
KEYS[2] closed       string  highest period boundary (ms) closed so far
KEYS[3] members      hash    member id -> "<heartbeat ms> <watermark ms>"
KEYS[4] open         zset    periods that received a merge, not closed yet
KEYS[5] pending      zset    closed, uncommitted periods (score = boundary ms)
KEYS[6] gauges       hash    persistent gauges, as of the last closed period
KEYS[7] p:<P>:gauges       hash  the period's gauge ops ("s<value>" | "d<delta>")
KEYS[8] p:<P>:gauge_values hash  written here: the gauges once P's ops applied

ARGV[1] lease token, ARGV[2] P (ms), ARGV[3] now (ms), ARGV[4] member ttl (ms),
ARGV[5] steady since (ms): when the leader's view of Redis last became
continuous. A member is dead when neither its heartbeat nor that moment is
within the ttl: after an outage of Redis itself every member gets a full ttl
to report again before it is given up.

P must be the next period to close: later than `closed`, with no period that
received data between them (empty periods may be skipped, data never).

Returns {-1} not the leader, {0, closed} P is not the next period to close
(nothing changed), {2, member, watermark, dead...} a live member may still
hold samples of P (retry), {1, clamped, dead...} closed: gauges updated and
snapshot, P added to pending, `closed` = P, clamped = gauges whose delta
took them past +-MAX_GAUGE (clamped to it, counted in values_clamped). Dead
members are removed; dead... lists each as its id then its heartbeat's age
(ms), for the leader's log.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1}
end
local p = tonumber(ARGV[2])
local closed = tonumber(redis.call('GET', KEYS[2]) or '0')
if p <= closed or #redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. closed, '(' .. ARGV[2], 'LIMIT', 0, 1) > 0 then
  return {0, closed}
end
local now, ttl, steady = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local members = redis.call('HGETALL', KEYS[3])
local dead = {}
local function withDead(out)
  for j = 1, #dead do out[#out + 1] = dead[j] end
  return out
end
for i = 1, #members, 2 do
  local rec = members[i + 1]
  local sp = string.find(rec, ' ', 1, true)
  local hb, wm = tonumber(string.sub(rec, 1, sp - 1)), tonumber(string.sub(rec, sp + 1))
  if math.max(hb, steady) + ttl < now then
    redis.call('HDEL', KEYS[3], members[i])
    dead[#dead + 1] = members[i]
    dead[#dead + 1] = now - hb
  elseif wm <= p then
    return withDead({2, members[i], wm})
  end
end
local ops = redis.call('HGETALL', KEYS[7])
local clamped = 0
for i = 1, #ops, 2 do
  local op = ops[i + 1]
  local v = string.sub(op, 2)
  if string.sub(op, 1, 1) == 'd' then
    local g = tonumber(v) + tonumber(redis.call('HGET', KEYS[6], ops[i]) or '0')
    if g > 1.7976931348623157e308 then g = 1.7976931348623157e308; clamped = clamped + 1
    elseif g < -1.7976931348623157e308 then g = -1.7976931348623157e308; clamped = clamped + 1 end
    v = string.format('%.17g', g) -- a gauge is clamped to the finite doubles
  end
  redis.call('HSET', KEYS[6], ops[i], v)
end
if redis.call('EXISTS', KEYS[6]) == 1 then
  redis.call('COPY', KEYS[6], KEYS[8], 'REPLACE')
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[2])
return withDead({1, clamped})
