--[[
commit-13: publish a computed period and drop its rotated state, fenced by
the lease, exactly once per period. (The period's new names were added to
known:* before this, in short HSETs: Store.rememberKnown.)

KEYS[1] lease   KEYS[2] pending   KEYS[3] outbox   KEYS[4] gauges
KEYS[5] gauge_ttl   KEYS[6] cur:gauges_touched
KEYS[7..12] pending:<ts>:{counters,timers,timer_counts,sets,gauges_touched,gauges}
KEYS[13] last_commit (string: the boundary ms of the last committed period, for health)

ARGV[1] lease token, ARGV[2] ts, ARGV[3] outbox bound (chunks), then sections:
  chunks:        n, chunk * n            (RPUSHed to the outbox in order)
  gauge ttls     n, (name, ttl) * n
  gauge deletes  n, name * n             (idle past gaugesMaxTTL; kept if
                                          updated again since the rotation)

Returns {-1, 0} not the leader, {0, 0} already committed, {1, dropped} done,
where dropped is the number of the oldest outbox chunks trimmed to keep the
outbox within its bound.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1, 0}
end
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  return {0, 0}
end
local i = 4
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('RPUSH', KEYS[3], ARGV[i]); i = i + 1
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
redis.call('SET', KEYS[13], ARGV[2])
local dropped = 0
local bound = tonumber(ARGV[3])
local len = redis.call('LLEN', KEYS[3])
if len > bound then
  dropped = len - bound
  redis.call('LTRIM', KEYS[3], dropped, -1)
end
return {1, dropped}
