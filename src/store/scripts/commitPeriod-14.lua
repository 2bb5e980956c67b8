--[[
commitPeriod-14: publish a computed (closed) period and drop its state, fenced by
the lease, exactly once per period, and record the period's numStats and
processing ms in the shard's fleet hash (shard 0's leader sums them,
flush/fleet-stats.ts). (The period's new names were added to
known:* before this, in short HSETs: Store.rememberSeen.)

KEYS[1] lease   KEYS[2] pending   KEYS[3] outbox   KEYS[4] gauges
KEYS[5] gauge_ttl   KEYS[6] last_commit (set to ts)
KEYS[7..11] p:<ts>:{parts,gauges,gauge_values,names,compactions}
KEYS[12] outbox_bytes   KEYS[13] outbox_claim:<sink> (the outbox reader's claim)
KEYS[14] fleet: field ts -> the shard's record of the period ("<numStats>
        <processing ms> <statsd's own counters...>"); fields older than
        ts - keep ms are removed

ARGV[1] lease token, ARGV[2] ts (the period's boundary, ms), ARGV[3] outbox
bound (bytes), then sections:
  chunks:        n, (chunk, lines) * n   (XADDed to the outbox in order; lines:
                                          the chunk's '\n'-ended line count)
  gauge ttls     n, (name, ttl) * n
  gauge deletes  n, name * n             (idle past gaugesMaxTTL: a later
                                          period's op brings one back when it closes)
  fleet          record, keep ms

Returns {-1, 0, 0} not the leader, {0, 0, 0} already committed,
{1, lines, bytes} done, where lines and bytes are what the outbox bound
dropped (oldest unclaimed entries first, see includes/outbox.lua).
]]
--#include outbox.lua
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1, 0, 0}
end
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  return {0, 0, 0}
end
local i = 4
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  outbox_add(KEYS[3], KEYS[12], ARGV[i], ARGV[i + 1]); i = i + 2
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1]); i = i + 2
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local name = ARGV[i]; i = i + 1
  redis.call('HDEL', KEYS[5], name)
  redis.call('HDEL', KEYS[4], name)
end
for k = 7, 11 do
  redis.call('UNLINK', KEYS[k]) -- freed in the background: a big period never stalls Redis
end
local keep = tonumber(ARGV[i + 1])
redis.call('HSET', KEYS[14], ARGV[2], ARGV[i])
local cutoff = tonumber(ARGV[2]) - keep
for _, f in ipairs(redis.call('HKEYS', KEYS[14])) do
  if tonumber(f) < cutoff then redis.call('HDEL', KEYS[14], f) end
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('SET', KEYS[6], ARGV[2])
local lines, bytes = outbox_trim(KEYS[3], KEYS[12], KEYS[13], tonumber(ARGV[3]))
return {1, lines, bytes}
