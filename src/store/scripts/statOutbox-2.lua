--[[
statOutbox-2: the outbox's depth and the id of its oldest entry, without
sending any entry's text (the console's stats; health).

KEYS[1] outbox (stream)   KEYS[2] outbox_bytes
ARGV none

Returns {entries, bytes, oldest id or false}.
]]
local entries = redis.call('XLEN', KEYS[1])
local bytes = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
return {entries, bytes, first and first[1] or false}
