--[[
mergeBatch-11: fold one local batch into the period in which it was received,
atomically and at most once, and record the sender's watermark. Counters,
timers and sets come as one packed part (store/packed-parts.ts), appended to
the period's string: no command a name; the shard's leader folds the parts
in merge order at flush (flush/fold-parts.ts), where maxNamesPerPeriod
admits their names. Gauges come as ARGV and are merged here, name by name,
as before (their ops are applied to the persistent gauges at close).

KEYS[1]  merged            zset  batch id -> ms merged (dedupe window)
KEYS[2]  closed            string highest period boundary (ms) closed so far
KEYS[3]  members           hash  member id -> "<heartbeat ms> <watermark ms>"
KEYS[4]  open              zset  periods that received a merge, not closed yet
KEYS[5]  p:<P>:parts       string the period's packed parts, appended one after another
KEYS[6]  p:<P>:gauges      hash  name -> "s<value>" (set this period, later deltas
                                 folded in) or "d<delta>" (only deltas this period);
                                 applied to the persistent gauges when P closes
KEYS[7]  outbox            stream Graphite plaintext chunks waiting for the sinks
KEYS[8]  outbox_bytes      string sum of the outbox entries' bytes
KEYS[9]  gauges            hash  persistent gauges (read only: a gauge held there is not new)
KEYS[10] p:<P>:names       string names the merges admitted (gauges; the fold counts
                                 on from it), deleted when P is committed
KEYS[11] merged_counts:<batch id> string "<dropped> <clamped>" of this batch's merge,
                                 kept for the dedupe window when not "0 0"

ARGV[1] batch id, ARGV[2] now (ms), ARGV[3] dedupe window (ms),
ARGV[4] P, the period's boundary (ms), ARGV[5] member id, ARGV[6] the member's
watermark (ms): the oldest period for which it may still hold unmerged
samples once this batch is merged, ARGV[7] "1" when the batch is late (its own
period closed before it arrived, so P is a later one): its gauge values are
older than any P already holds, and do not replace them (its parts carry the
late flag themselves). ARGV[8] maxNames (its shard's share of
maxNamesPerPeriod; 0: unbounded), ARGV[9] the period's byte budget for parts
(0: none), then:
  ARGV[10] the part (counters, timers, sets; "" for none)
  ARGV[11] the own part (tallyd's own counters, never refused; "" for none)
  ARGV[12] the part's names, ARGV[13] up to 5 of them, "\n"-separated
  gauges:       n, (name, mode "s"|"d", value) * n
  passthrough:  n, (chunk, lines) * n   (finished Graphite lines with their
                                own timestamps, XADDed to the outbox as they
                                are; lines: the chunk's line count; the outbox
                                bound is applied at the next commit)
A gauge appears at most once (a Batch keeps one slot per name).

The byte budget: a part that would take the period's parts past it is not
appended, and counted as its names dropped (the period's names that it held
included); the own part always is. The gauges' bound: a gauge new to the
period (absent from its ops and from the persistent gauges) is admitted while
the period's count is under maxNames, else dropped and counted, once per batch.

Returns {1, dropped, clamped, example...} when merged: dropped = gauges
refused by the bound plus the names of a part the budget refused, clamped =
gauge sums clamped to +-MAX_GAUGE here, then up to 5 of the dropped names;
{0, dropped, clamped} when this batch id was merged before (a retry whose
first attempt ran but whose reply was lost: checked first, so it is never
taken for late; nothing changes, and the first attempt's counts come back,
for the caller that never saw them), {-2, closed} when period P is already
closed (nothing changed: the caller merges the batch into the oldest open
period, closed + flushInterval, and counts it late).
Gauge arithmetic is in Lua doubles and stored with %.17g, which round-trips
exactly; a gauge's first value in a period is stored as the sender's text
(JavaScript's String(x)); a gauge is clamped to +-MAX_GAUGE (the largest
double), never infinite.
]]
--#include outbox.lua
local CHUNK = 1000 -- names per command; unpack() stays far below Lua's C stack limit (8000)
local format = string.format
local MAX_GAUGE = 1.7976931348623157e308
local clamped = 0
-- A gauge sum clamped to the finite doubles (counted).
local function clampGauge(x)
  if x > MAX_GAUGE then clamped = clamped + 1; return MAX_GAUGE
  elseif x < -MAX_GAUGE then clamped = clamped + 1; return -MAX_GAUGE end
  return x
end
local now = tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  -- A retry keeps its id (and its counts) another window from now: a batch retried for longer than one window (an
  -- unconfirmed WAIT during a long replica outage) must still merge once.
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[11], ARGV[3])
  local counts = redis.call('GET', KEYS[11])
  if not counts then return {0, 0, 0} end
  local sp = string.find(counts, ' ', 1, true)
  return {0, tonumber(string.sub(counts, 1, sp - 1)), tonumber(string.sub(counts, sp + 1))}
end
local closed = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[4]) <= closed then
  return {-2, closed}
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
local late = ARGV[7] == '1'
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('HSET', KEYS[3], ARGV[5], ARGV[2] .. ' ' .. ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[4])

-- The bound on distinct names in the period (see the header).
local maxNames = tonumber(ARGV[8])
local count0 = tonumber(redis.call('GET', KEYS[10]) or '0')
local count = count0
local dropped = 0
local examples = {}
-- A name new to the period: true when it may come in (and is counted), false when the bound drops it.
local function admit(name)
  if maxNames > 0 and count >= maxNames then
    dropped = dropped + 1
    if #examples < 5 then examples[#examples + 1] = name end
    return false
  end
  count = count + 1
  return true
end

-- Gauges: n (name, mode, value) triples at ARGV[i..] into the period's gauge ops.
-- 's' replaces whatever the period had; 'd' adds to the period's value and keeps its mode.
-- A late batch's values are older than the period's own: its 's' gives way to an 's' already
-- there, and goes before a 'd' already there (s<late value + those deltas>).
-- A gauge with no op in the period and no persistent value (KEYS[9]) is new: admit().
local function gaugeAll(key, i, n)
  local done = 0
  while done < n do
    local m = math.min(CHUNK, n - done)
    local at = i + 3 * done
    local names = {}
    for j = 1, m do names[j] = ARGV[at + 3 * j - 3] end
    local cur = redis.call('HMGET', key, unpack(names))
    local absent = {}
    for j = 1, m do if not cur[j] then absent[#absent + 1] = names[j] end end
    local held = {}
    if #absent > 0 and maxNames > 0 then
      local g = redis.call('HMGET', KEYS[9], unpack(absent))
      for j = 1, #absent do if g[j] then held[absent[j]] = true end end
    end
    local kv = {}
    for j = 1, m do
      local mode, value = ARGV[at + 3 * j - 2], ARGV[at + 3 * j - 1]
      local c = cur[j]
      if c then
        local cmode, cvalue = string.sub(c, 1, 1), string.sub(c, 2)
        if mode == 'd' then
          mode = cmode
          value = format('%.17g', clampGauge(tonumber(cvalue) + tonumber(value)))
        elseif late then
          if cmode == 's' then
            value = cvalue
          else
            value = format('%.17g', clampGauge(tonumber(value) + tonumber(cvalue)))
          end
        end
      end
      if c or held[names[j]] or admit(names[j]) then
        kv[#kv + 1] = names[j]
        kv[#kv + 1] = mode .. value
      end
    end
    if #kv > 0 then redis.call('HSET', key, unpack(kv)) end
    done = done + m
  end
  return i + 3 * n
end

-- The parts: the byte budget refuses a part whole (counted as its names), never the own part.
local budget = tonumber(ARGV[9])
if #ARGV[10] > 0 then
  if budget > 0 and redis.call('STRLEN', KEYS[5]) + #ARGV[10] > budget then
    dropped = dropped + tonumber(ARGV[12])
    for name in string.gmatch(ARGV[13], '[^\n]+') do
      if #examples < 5 then examples[#examples + 1] = name end
    end
  else
    redis.call('APPEND', KEYS[5], ARGV[10])
  end
end
if #ARGV[11] > 0 then redis.call('APPEND', KEYS[5], ARGV[11]) end
local i = 14
i = gaugeAll(KEYS[6], i + 1, tonumber(ARGV[i]))
local n = tonumber(ARGV[i])
for j = i + 1, i + 2 * n, 2 do outbox_add(KEYS[7], KEYS[8], ARGV[j], ARGV[j + 1]) end
if count ~= count0 then redis.call('SET', KEYS[10], count) end
if dropped + clamped > 0 then redis.call('SET', KEYS[11], dropped .. ' ' .. clamped, 'PX', ARGV[3]) end
local out = {1, dropped, clamped}
for j = 1, #examples do out[j + 3] = examples[j] end
return out
