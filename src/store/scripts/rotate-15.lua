--[[
rotate-15: close the current period at boundary ts, fenced by the lease.

KEYS[1] lease          string  the leader's token
KEYS[2] pending        zset    rotated, uncommitted boundaries
KEYS[3] last_rotated   string  highest boundary rotated so far
KEYS[4] gauges         hash    persistent gauges
KEYS[5..9]   cur:{counters,timers,timer_counts,sets,gauges_touched}
KEYS[10..14] pending:<ts>:{counters,timers,timer_counts,sets,gauges_touched}
KEYS[15]     pending:<ts>:gauges  (a COPY of gauges: the period's snapshot)

ARGV[1] lease token, ARGV[2] ts (unix seconds)

Returns -1 not the leader (nothing changed), 0 ts already rotated or older
than the last rotation (nothing changed), 1 rotated.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local ts = tonumber(ARGV[2])
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if ts <= last then
  return 0
end
for j = 0, 4 do
  if redis.call('EXISTS', KEYS[5 + j]) == 1 then
    redis.call('RENAME', KEYS[5 + j], KEYS[10 + j])
  end
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('COPY', KEYS[4], KEYS[15], 'REPLACE')
end
redis.call('ZADD', KEYS[2], ts, ARGV[2])
redis.call('SET', KEYS[3], ARGV[2])
return 1
