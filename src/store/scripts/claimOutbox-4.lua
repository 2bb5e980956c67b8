--[[
claimOutbox-4: a sink's next read of the outbox, recorded as its claim, fenced
by the lease. Reading and claiming are one step, so a commit's trim can never
drop an entry between the read and the claim (see includes/outbox.lua).

KEYS[1] lease   KEYS[2] outbox (stream)   KEYS[3] outbox_acked:<sink>
KEYS[4] outbox_claim:<sink>
ARGV[1] lease token, ARGV[2] most bytes to return (at least one entry is
returned), ARGV[3] most entries to return

Returns {-1} not the leader (nothing claimed); else {1, id, d, n, b, id, d,
n, b, ...}: the entries after the sink's cursor, oldest first; the claim is
the last id returned (unchanged when there is none).
]]
--#include outbox.lua
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1}
end
local acked = redis.call('GET', KEYS[3])
local start = acked and ('(' .. acked) or '-'
local maxBytes = tonumber(ARGV[2])
local maxEntries = tonumber(ARGV[3])
local out = {1}
local size = 0
local count = 0
local last = nil
-- A few entries per XRANGE: a backlog of many MiB is never copied into Lua at once.
while count < maxEntries and size < maxBytes do
  local got = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', math.min(8, maxEntries - count))
  if #got == 0 then break end
  for _, e in ipairs(got) do
    local b = tonumber(outbox_field(e[2], 'b')) or 0
    if last and size + b > maxBytes then
      size = maxBytes -- full: stop the outer loop too
      break
    end
    out[#out + 1] = e[1]
    out[#out + 1] = outbox_field(e[2], 'd') or ''
    out[#out + 1] = outbox_field(e[2], 'n') or '0'
    out[#out + 1] = tostring(b)
    size = size + b
    count = count + 1
    last = e[1]
    start = '(' .. e[1]
  end
end
if last then redis.call('SET', KEYS[4], last) end
return out
