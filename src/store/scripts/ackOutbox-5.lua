--[[
ackOutbox-5: a sink delivered every outbox entry up to and including a named
id; fenced by the lease. Idempotent: acknowledging that id again, or an
older one, changes nothing (an ack that ioredis re-sends after a reconnect
is harmless). The ack names an id, never a count, so it can only remove
entries this sink read (claimOutbox-4) and wrote.

Entries every outbox sink has passed are deleted and their bytes taken off
outbox_bytes. Today one sink reads the outbox (graphite, text or pickle), so
that is every entry up to the id; a second reader would add its cursor to
KEYS and delete up to the smaller cursor.

KEYS[1] lease   KEYS[2] outbox (stream)   KEYS[3] outbox_bytes
KEYS[4] outbox_acked:<sink>   KEYS[5] outbox_claim:<sink>
ARGV[1] lease token, ARGV[2] id of the last entry delivered

Returns -1 not the leader (nothing changed), 0 nothing new (the id is not
past the cursor), 1 acknowledged.
]]
--#include outbox.lua
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local id = ARGV[2]
local acked = redis.call('GET', KEYS[4])
if acked and outbox_id_cmp(id, acked) <= 0 then
  return 0
end
local bytes = 0
while true do
  local batch = redis.call('XRANGE', KEYS[2], '-', id, 'COUNT', 8)
  if #batch == 0 then break end
  for _, e in ipairs(batch) do
    bytes = bytes + (tonumber(outbox_field(e[2], 'b')) or 0)
    redis.call('XDEL', KEYS[2], e[1])
  end
end
if bytes > 0 then redis.call('DECRBY', KEYS[3], bytes) end
redis.call('SET', KEYS[4], id)
local claim = redis.call('GET', KEYS[5])
if claim and outbox_id_cmp(claim, id) <= 0 then
  redis.call('DEL', KEYS[5])
end
return 1
