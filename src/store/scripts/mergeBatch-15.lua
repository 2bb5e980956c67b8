--[[
mergeBatch-15: fold one local batch into the period in which it was received,
atomically and at most once, and record the sender's watermark. The period
takes at most maxNames distinct names: samples of a name new to a full period
are dropped and counted.

KEYS[1]  merged            zset  batch id -> ms merged (dedupe window)
KEYS[2]  closed            string highest period boundary (ms) closed so far
KEYS[3]  members           hash  member id -> "<heartbeat ms> <watermark ms>"
KEYS[4]  open              zset  periods that received a merge, not closed yet
KEYS[5]  p:<P>:counters     hash  name -> sum of value * (1/rate), %.17g
KEYS[6]  p:<P>:timers       hash  name "\n" batch id -> packed float64 LE samples
KEYS[7]  p:<P>:timer_counts hash  name -> sum of 1/rate, %.17g
KEYS[8]  p:<P>:sets         hash  name "\n" member -> 1
KEYS[9]  p:<P>:gauges       hash  name -> "s<value>" (set this period, later deltas
                                 folded in) or "d<delta>" (only deltas this period);
                                 applied to the persistent gauges when P closes
KEYS[10] outbox            stream Graphite plaintext chunks waiting for the sinks
KEYS[11] outbox_bytes      string sum of the outbox entries' bytes
KEYS[12] gauges            hash  persistent gauges (read only: a gauge held there is not new)
KEYS[13] p:<P>:names        string distinct names the period holds (the bound's count)
KEYS[14] p:<P>:set_names    hash  set name -> 1 (which set names the period holds)
                                 (13 and 14 are deleted when P closes)
KEYS[15] merged_counts:<batch id> string "<dropped> <clamped>" of this batch's merge,
                                 kept for the dedupe window when not "0 0"

ARGV[1] batch id, ARGV[2] now (ms), ARGV[3] dedupe window (ms),
ARGV[4] P, the period's boundary (ms), ARGV[5] member id, ARGV[6] the member's
watermark (ms): the oldest period for which it may still hold unmerged
samples once this batch is merged, ARGV[7] "1" when the batch is late (its own
period closed before it arrived, so P is a later one): its gauge values are
older than any P already holds, and do not replace them. ARGV[8] maxNames
(maxNamesPerPeriod; 0: unbounded), ARGV[9] a prefix (prefixStats + ".")
whose counters are never dropped (tallyd's own, e.g. names_dropped itself).
Then sections, each a count n followed by its items:
  counters:     n, (name, delta) * n
  timers:       n, (field, packed samples) * n
  timer_counts: n, (name, delta) * n
  gauges:       n, (name, mode "s"|"d", value) * n
  sets:         n, field * n
  passthrough:  n, chunk * n   (finished Graphite lines with their own
                                timestamps, XADDed to the outbox as they are;
                                the outbox bound is applied at the next commit)
A name appears at most once per section (a Batch keeps one slot per name).

The bound: the period's names are its distinct counter, timer, gauge and set
names, each type apart (a counter and a timer both named x are two). A name is
new when the period does not hold it yet (a gauge: nor the persistent gauges).
Once the count reaches maxNames, a new name's entry is dropped (a set: all its
members in this batch); names the period holds still merge. Counted per batch:
each dropped name once per batch that carried it.

Returns {1, dropped, clamped, example...} when merged: dropped = names refused
by the bound, clamped = gauge sums clamped to +-MAX_GAUGE here, then up to 5
of the dropped names; {0, dropped, clamped} when this batch id was merged before
(a retry whose first attempt ran but whose reply was lost: checked first, so
it is never taken for late; nothing changes, and the first attempt's counts
come back, for the caller that never saw them), {-2, closed} when period P is
already closed (nothing changed: the caller merges the batch into the oldest
open period, closed + flushInterval, and counts it late).
Arithmetic is in Lua doubles and stored with %.17g, which round-trips
exactly, so sums match JavaScript's own float additions. A sum that
overflows is stored as "inf" / "-inf" and stays there (statsd's counter prints
Infinity; the first overflow wins, never NaN: inf + -inf keeps the stored one);
a gauge is clamped to +-MAX_GAUGE (the largest double), never infinite.

Cost: every section is read and written CHUNK names per HMGET / HSET, not
one command per name: a command called from Lua costs about as much as the arithmetic around it, so this halves the script's time for a
batch of many distinct names (20,000 counters: ~55 -> ~25 ms). The bound adds
no command per name: newness comes from the HMGETs the merge does anyway
(set names and gauges absent from the period: one more HMGET per chunk).
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
  redis.call('PEXPIRE', KEYS[15], ARGV[3])
  local counts = redis.call('GET', KEYS[15])
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
local exempt = ARGV[9]
local count0 = tonumber(redis.call('GET', KEYS[13]) or '0')
local count = count0
local dropped = 0
local examples = {}
-- A name new to the period: true when it may come in (and is counted), false when the bound drops it.
local function admit(name, isCounter)
  if maxNames > 0 and count >= maxNames and not (isCounter and #exempt > 0 and string.sub(name, 1, #exempt) == exempt) then
    dropped = dropped + 1
    if #examples < 5 then examples[#examples + 1] = name end
    return false
  end
  count = count + 1
  return true
end

-- Adds the n (name, delta) pairs at ARGV[i..] to the fields of key; returns the index after them.
-- Names new to the period go through admit(); refused ones are put in `refused` when given.
local function addAll(key, i, n, isCounter, refused)
  local done = 0
  while done < n do
    local m = math.min(CHUNK, n - done)
    local at = i + 2 * done
    local names = {}
    for j = 1, m do names[j] = ARGV[at + 2 * j - 2] end
    local cur = redis.call('HMGET', key, unpack(names))
    local kv = {}
    for j = 1, m do
      local v = tonumber(ARGV[at + 2 * j - 1])
      local c = cur[j]
      if c then
        c = tonumber(c)
        local sum = c + v
        if sum ~= sum then sum = c end -- inf + -inf: the first overflow stays
        v = sum
      end
      if c or admit(names[j], isCounter) then
        kv[#kv + 1] = names[j]
        kv[#kv + 1] = format('%.17g', v)
      elseif refused then
        refused[names[j]] = true
      end
    end
    if #kv > 0 then redis.call('HSET', key, unpack(kv)) end
    done = done + m
  end
  return i + 2 * n
end

-- HSETs the n (field, value) pairs at ARGV[i..] but those of refused names; returns the index after them.
local function setAll(key, i, n, refused)
  local done = 0
  while done < n do
    local m = math.min(CHUNK, n - done)
    local at = i + 2 * done
    local kv = {}
    for j = 1, m do
      local f = ARGV[at + 2 * j - 2]
      if not (refused and refused[string.sub(f, 1, string.find(f, '\n', 1, true) - 1)]) then
        kv[#kv + 1] = f
        kv[#kv + 1] = ARGV[at + 2 * j - 1]
      end
    end
    if #kv > 0 then redis.call('HSET', key, unpack(kv)) end
    done = done + m
  end
  return i + 2 * n
end

-- Set fields "name\nmember" -> '1' for the n fields at ARGV[i..]; a set name new to the
-- period (KEYS[14]) goes through admit(). Returns the index after them.
local function markAll(key, namesKey, i, n)
  local state = {} -- set name -> true (in the period) | false (refused)
  local done = 0
  while done < n do
    local m = math.min(CHUNK, n - done)
    local at = i + done
    local ask, asked = {}, {}
    for j = 1, m do
      local f = ARGV[at + j - 1]
      local name = string.sub(f, 1, string.find(f, '\n', 1, true) - 1)
      if state[name] == nil and not asked[name] then
        asked[name] = true
        ask[#ask + 1] = name
      end
    end
    if #ask > 0 then
      local cur = redis.call('HMGET', namesKey, unpack(ask))
      local add = {}
      for j = 1, #ask do
        if cur[j] then
          state[ask[j]] = true
        else
          state[ask[j]] = admit(ask[j], false)
          if state[ask[j]] then add[#add + 1] = ask[j]; add[#add + 1] = '1' end
        end
      end
      if #add > 0 then redis.call('HSET', namesKey, unpack(add)) end
    end
    local kv = {}
    for j = 1, m do
      local f = ARGV[at + j - 1]
      if state[string.sub(f, 1, string.find(f, '\n', 1, true) - 1)] then
        kv[#kv + 1] = f
        kv[#kv + 1] = '1'
      end
    end
    if #kv > 0 then redis.call('HSET', key, unpack(kv)) end
    done = done + m
  end
  return i + n
end

-- Gauges: n (name, mode, value) triples at ARGV[i..] into the period's gauge ops.
-- 's' replaces whatever the period had; 'd' adds to the period's value and keeps its mode.
-- A late batch's values are older than the period's own: its 's' gives way to an 's' already
-- there, and goes before a 'd' already there (s<late value + those deltas>).
-- A gauge with no op in the period and no persistent value (KEYS[12]) is new: admit().
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
      local g = redis.call('HMGET', KEYS[12], unpack(absent))
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
      if c or held[names[j]] or admit(names[j], false) then
        kv[#kv + 1] = names[j]
        kv[#kv + 1] = mode .. value
      end
    end
    if #kv > 0 then redis.call('HSET', key, unpack(kv)) end
    done = done + m
  end
  return i + 3 * n
end

-- Section offsets first: timer names are decided on timer_counts (name -> count), which comes
-- after the timers' sample fields (name "\n" batch id) in ARGV.
local at = {}
local i = 10
for s = 1, 6 do
  at[s] = i
  local n = tonumber(ARGV[i])
  i = i + 1 + n * (s == 4 and 3 or ((s == 5 or s == 6) and 1 or 2))
end
addAll(KEYS[5], at[1] + 1, tonumber(ARGV[at[1]]), true, nil)
local refusedTimers = {}
addAll(KEYS[7], at[3] + 1, tonumber(ARGV[at[3]]), false, refusedTimers)
setAll(KEYS[6], at[2] + 1, tonumber(ARGV[at[2]]), refusedTimers)
gaugeAll(KEYS[9], at[4] + 1, tonumber(ARGV[at[4]]))
markAll(KEYS[8], KEYS[14], at[5] + 1, tonumber(ARGV[at[5]]))
local n = tonumber(ARGV[at[6]])
for j = at[6] + 1, at[6] + n do outbox_add(KEYS[10], KEYS[11], ARGV[j]) end
if count ~= count0 then redis.call('SET', KEYS[13], count) end
if dropped + clamped > 0 then redis.call('SET', KEYS[15], dropped .. ' ' .. clamped, 'PX', ARGV[3]) end
local out = {1, dropped, clamped}
for j = 1, #examples do out[j + 3] = examples[j] end
return out
