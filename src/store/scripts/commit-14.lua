--[[
commit-14: publish a computed period and drop its rotated state, fenced by
the lease, exactly once per period. (The period's new names were added to
known:* before this, in short HSETs: Store.rememberKnown.)

KEYS[1] lease   KEYS[2] pending   KEYS[3] outbox   KEYS[4] gauges
KEYS[5] gauge_ttl   KEYS[6] cur:gauges_touched
KEYS[7..12] pending:<ts>:{counters,timers,timer_counts,sets,gauges_touched,gauges}
KEYS[13] outbox_bytes   KEYS[14] outbox_claim:<sink> (the outbox reader's claim)

ARGV[1] lease token, ARGV[2] ts, ARGV[3] outbox bound (bytes), then sections:
  chunks:        n, chunk * n            (XADDed to the outbox in order)
  gauge ttls     n, (name, ttl) * n
  gauge deletes  n, name * n             (idle past gaugesMaxTTL; kept if
                                          updated again since the rotation)

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
  outbox_add(KEYS[3], KEYS[13], ARGV[i]); i = i + 1
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1]); i = i + 2
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local name = ARGV[i]; i = i + 1
  redis.call('HDEL', KEYS[5], name)
  if redis.call('HEXISTS', KEYS[6], name) == 0 then
    redis.call('HDEL', KEYS[4], name)
  end
end
for k = 7, 12 do
  redis.call('UNLINK', KEYS[k]) -- freed in the background: a big period never stalls Redis
end
redis.call('ZREM', KEYS[2], ARGV[2])
local lines, bytes = outbox_trim(KEYS[3], KEYS[13], KEYS[14], tonumber(ARGV[3]))
return {1, lines, bytes}
