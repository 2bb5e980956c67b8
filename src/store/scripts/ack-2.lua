--[[
ack-2: drop the first n outbox chunks once they were written to Carbon,
fenced by the lease so a stale sink never trims chunks it did not send.

KEYS[1] lease   KEYS[2] outbox
ARGV[1] lease token, ARGV[2] n

Returns -1 not the leader (nothing trimmed), 1 trimmed.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
return 1
