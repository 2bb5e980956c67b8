--[[
mergeBatch-11: fold one local batch into the period in which it was received,
atomically and at most once, and record the sender's watermark.

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

ARGV[1] batch id, ARGV[2] now (ms), ARGV[3] dedupe window (ms),
ARGV[4] P, the period's boundary (ms), ARGV[5] member id, ARGV[6] the member's
watermark (ms): the oldest period for which it may still hold unmerged
samples once this batch is merged, ARGV[7] "1" when the batch is late (its own
period closed before it arrived, so P is a later one): its gauge values are
older than any P already holds, and do not replace them. Then sections, each
a count n followed by its items:
  counters:     n, (name, delta) * n
  timers:       n, (field, packed samples) * n
  timer_counts: n, (name, delta) * n
  gauges:       n, (name, mode "s"|"d", value) * n
  sets:         n, field * n
  passthrough:  n, chunk * n   (finished Graphite lines with their own
                                timestamps, XADDed to the outbox as they are;
                                the outbox bound is applied at the next commit)
A name appears at most once per section (a Batch keeps one slot per name).

Returns {1} when merged, {0} when this batch id was merged before (a retry
whose first attempt ran but whose reply was lost: checked first, so it is
never taken for late), {-2, closed} when period P is already closed (nothing changed: the caller
merges the batch into the oldest open period, closed + flushInterval, and
counts it late).
Arithmetic is in Lua doubles and stored with %.17g, which round-trips
exactly, so sums match JavaScript's own float additions. A sum that
overflows is stored as "inf" / "-inf" and stays there (statsd's counter prints
Infinity; the first overflow wins, never NaN: inf + -inf keeps the stored one);
a gauge is clamped to +-MAX_GAUGE (the largest double), never infinite.

Cost: every section is read and written CHUNK names per HMGET / HSET, not
one command per name: a command called from Lua costs about as much as the arithmetic around it, so this halves the script's time for a
batch of many distinct names (20,000 counters: ~55 -> ~25 ms).
]]
--#include outbox.lua
local CHUNK = 1000 -- names per command; unpack() stays far below Lua's C stack limit (8000)
local format = string.format
local MAX_GAUGE = 1.7976931348623157e308
-- A gauge sum clamped to the finite doubles.
local function clampGauge(x)
  if x > MAX_GAUGE then return MAX_GAUGE elseif x < -MAX_GAUGE then return -MAX_GAUGE end
  return x
end
local now = tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {0}
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

-- Adds the n (name, delta) pairs at ARGV[i..] to the fields of key; returns the index after them.
local function addAll(key, i, n)
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
      kv[2 * j - 1] = names[j]
      kv[2 * j] = format('%.17g', v)
    end
    redis.call('HSET', key, unpack(kv))
    done = done + m
  end
  return i + 2 * n
end

-- HSETs the n (field, value) pairs at ARGV[i..]; returns the index after them.
local function setAll(key, i, n)
  local done = 0
  while done < n do
    local m = math.min(CHUNK, n - done)
    local at = i + 2 * done
    local kv = {}
    for j = 1, 2 * m do kv[j] = ARGV[at + j - 1] end
    redis.call('HSET', key, unpack(kv))
    done = done + m
  end
  return i + 2 * n
end

-- HSETs field -> '1' for the n fields at ARGV[i..]; returns the index after them.
local function markAll(key, i, n)
  local done = 0
  while done < n do
    local m = math.min(CHUNK, n - done)
    local at = i + done
    local kv = {}
    for j = 1, m do
      kv[2 * j - 1] = ARGV[at + j - 1]
      kv[2 * j] = '1'
    end
    redis.call('HSET', key, unpack(kv))
    done = done + m
  end
  return i + n
end

-- Gauges: n (name, mode, value) triples at ARGV[i..] into the period's gauge ops.
-- 's' replaces whatever the period had; 'd' adds to the period's value and keeps its mode.
-- A late batch's values are older than the period's own: its 's' gives way to an 's' already
-- there, and goes before a 'd' already there (s<late value + those deltas>).
local function gaugeAll(key, i, n)
  local done = 0
  while done < n do
    local m = math.min(CHUNK, n - done)
    local at = i + 3 * done
    local names = {}
    for j = 1, m do names[j] = ARGV[at + 3 * j - 3] end
    local cur = redis.call('HMGET', key, unpack(names))
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
      kv[2 * j - 1] = names[j]
      kv[2 * j] = mode .. value
    end
    redis.call('HSET', key, unpack(kv))
    done = done + m
  end
  return i + 3 * n
end

local i = 8
local n = tonumber(ARGV[i]); i = addAll(KEYS[5], i + 1, n)
n = tonumber(ARGV[i]); i = setAll(KEYS[6], i + 1, n)
n = tonumber(ARGV[i]); i = addAll(KEYS[7], i + 1, n)
n = tonumber(ARGV[i]); i = gaugeAll(KEYS[9], i + 1, n)
n = tonumber(ARGV[i]); i = markAll(KEYS[8], i + 1, n)
n = tonumber(ARGV[i])
for j = i + 1, i + n do outbox_add(KEYS[10], KEYS[11], ARGV[j]) end
return {1}
