--[[
forgetIdle-11: forget names idle since before a cutoff (forgetIdleAfter), as a
statsd restart would: they leave known:* (no more re-emission) and a gauge
leaves the persistent gauges. Fenced by the lease. Each name is checked again
here against its stored last-seen time, so a name seen after the leader chose
it stays. A gauge with an op in a period still open (merged, not closed: its
last-seen time is written only at commit) stays too, or its delta would be
applied to 0 at close: the caller passes the gauges hashes of the two oldest
open periods, and when more periods are open than it passed, or others, no
gauge is forgotten this time (the next sweep tries again).

KEYS[1] lease            string the leader's token
KEYS[2] known:counters   hash   name -> last seen (ms)
KEYS[3] known:timers     hash   idem
KEYS[4] known:sets       hash   idem
KEYS[5] gauges           hash   persistent gauges
KEYS[6] gauge_ttl        hash   remaining flushes per gauge (deleteGauges)
KEYS[7] gauge_seen       hash   gauge name -> last seen (ms)
KEYS[8] known_version    string bumped when names leave known:*
KEYS[9] open             zset   periods merged into and not closed yet
KEYS[10], KEYS[11] p:<P>:gauges of the two oldest open periods (any key of the
        same hash tag when fewer are open)

ARGV[1] lease token, ARGV[2] cutoff (ms): a name whose stored last-seen time
is older is idle. ARGV[3], ARGV[4]: the boundaries (ms) of KEYS[10] and
KEYS[11], '' for none. Then four sections (counters, timers, sets, gauges), each
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
-- The gauge sweep runs only when KEYS[10..11] are every open period's gauges.
local open = redis.call('ZRANGE', KEYS[9], 0, -1)
local passed = {}
if ARGV[3] ~= '' then passed[#passed + 1] = ARGV[3] end
if ARGV[4] ~= '' then passed[#passed + 1] = ARGV[4] end
local gaugesChecked = #open <= #passed
for j = 1, #open do
  if open[j] ~= passed[j] then gaugesChecked = false end
end
local i = 5
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
if not gaugesChecked then n = 0 end
for j = i, i + n - 1 do
  local seen = redis.call('HGET', KEYS[7], ARGV[j])
  local pending = redis.call('HEXISTS', KEYS[10], ARGV[j]) == 1 or redis.call('HEXISTS', KEYS[11], ARGV[j]) == 1
  if not pending and (not seen or (tonumber(seen) or 0) < cutoff) then
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
