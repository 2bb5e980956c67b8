--[[
renew-1: extend the lease if this process still holds it.

KEYS[1] lease
ARGV[1] token, ARGV[2] ttl (ms)

Returns 1 renewed, 0 the lease is someone else's or gone.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
