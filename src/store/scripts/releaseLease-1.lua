--[[
releaseLease-1: give the lease up on a clean stop, only if it is ours.

KEYS[1] lease
ARGV[1] token

Returns 1 released, 0 not ours.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
