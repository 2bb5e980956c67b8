--[[
merge-8: fold one local batch into the current period, atomically and at most once.

KEYS[1] merged            zset  batch id -> ms merged (dedupe window)
KEYS[2] cur:counters      hash  name -> sum of value * (1/rate), %.17g
KEYS[3] cur:timers        hash  name "\n" batch id -> packed float64 LE samples
KEYS[4] cur:timer_counts  hash  name -> sum of 1/rate, %.17g
KEYS[5] cur:sets          hash  name "\n" member -> 1
KEYS[6] gauges            hash  name -> value (persists across periods)
KEYS[7] cur:gauges_touched hash name -> 1 (gauges updated this period)
KEYS[8] outbox            list  Graphite plaintext chunks waiting for Carbon

ARGV[1] batch id, ARGV[2] now (ms), ARGV[3] dedupe window (ms), then sections,
each a count n followed by its items:
  counters:     n, (name, delta) * n
  timers:       n, (field, packed samples) * n
  timer_counts: n, (name, delta) * n
  gauges:       n, (name, mode "s"|"d", value) * n
  sets:         n, field * n
  passthrough:  n, chunk * n   (finished Graphite lines with their own
                                timestamps, RPUSHed to the outbox as they are)

Returns 1 when merged, 0 when this batch id was merged before (a retry).
Arithmetic is in Lua doubles and stored with %.17g, which round-trips
exactly, so sums match JavaScript's own float additions.
]]
local now = tonumber(ARGV[2])
if redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1]) == 0 then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))

local function addf(key, field, delta)
  local cur = redis.call('HGET', key, field)
  local v = delta
  if cur then v = tonumber(cur) + delta end
  redis.call('HSET', key, field, string.format('%.17g', v))
end

local i = 4
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  addf(KEYS[2], ARGV[i], tonumber(ARGV[i + 1])); i = i + 2
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  addf(KEYS[4], ARGV[i], tonumber(ARGV[i + 1])); i = i + 2
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local name, mode, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if mode == 'd' then
    addf(KEYS[6], name, tonumber(value))
  else
    redis.call('HSET', KEYS[6], name, value)
  end
  redis.call('HSET', KEYS[7], name, '1')
  i = i + 3
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('HSET', KEYS[5], ARGV[i], '1'); i = i + 1
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('RPUSH', KEYS[8], ARGV[i]); i = i + 1
end
return 1
