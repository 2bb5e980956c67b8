--[[
acquireLease-1: take the flushing lease if it is free, or renew it if it is ours.

KEYS[1] lease
ARGV[1] token, ARGV[2] ttl (ms)

Returns 2 taken (it was free), 1 renewed (it was ours), 0 someone else holds it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  return 2
end
return 0
