--[[
forgetIdle-8: forget names idle since before a cutoff (forgetIdleAfter), as a
statsd restart would: they leave known:* (no more re-emission) and a gauge
leaves the persistent gauges. Fenced by the lease. Each name is checked again
here against its stored last-seen time, so a name seen after the leader chose
it stays.

KEYS[1] lease            string the leader's token
KEYS[2] known:counters   hash   name -> last seen (ms)
KEYS[3] known:timers     hash   idem
KEYS[4] known:sets       hash   idem
KEYS[5] gauges           hash   persistent gauges
KEYS[6] gauge_ttl        hash   remaining flushes per gauge (deleteGauges)
KEYS[7] gauge_seen       hash   gauge name -> last seen (ms)
KEYS[8] known_version    string bumped when names leave known:*

ARGV[1] lease token, ARGV[2] cutoff (ms): a name whose stored last-seen time
is older is idle. Then four sections (counters, timers, sets, gauges), each
n, name * n. A gauge with no last-seen time (from before it was recorded) is
idle when the leader says so.

Returns {-1} not the leader, else {1, forgotten, removed, version before,
version after}: forgotten = names that left known:* or the gauges (counted in
names_forgotten), removed = names given that this script removed in any form
(so the leader knows its copy matches Redis when removed is all it gave);
the versions are equal when nothing was removed ('' before any bump).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1}
end
local cutoff = tonumber(ARGV[2])
local forgotten, removed = 0, 0
local i = 3
for t = 2, 4 do
  local n = tonumber(ARGV[i]); i = i + 1
  for j = i, i + n - 1 do
    local seen = redis.call('HGET', KEYS[t], ARGV[j])
    if seen and (tonumber(seen) or 0) < cutoff then
      redis.call('HDEL', KEYS[t], ARGV[j])
      forgotten = forgotten + 1
      removed = removed + 1
    end
  end
  i = i + n
end
local n = tonumber(ARGV[i]); i = i + 1
for j = i, i + n - 1 do
  local seen = redis.call('HGET', KEYS[7], ARGV[j])
  if not seen or (tonumber(seen) or 0) < cutoff then
    -- forgotten when it held a value (a gauge deleteGauges removed leaves only its last-seen time)
    local had = redis.call('HDEL', KEYS[5], ARGV[j])
    redis.call('HDEL', KEYS[6], ARGV[j])
    if had + redis.call('HDEL', KEYS[7], ARGV[j]) > 0 then removed = removed + 1 end
    forgotten = forgotten + had
  end
end
local before = redis.call('GET', KEYS[8]) or ''
local after = before
if removed > 0 then after = tostring(redis.call('INCR', KEYS[8])) end
return {1, forgotten, removed, before, after}
