--[[
compactParts-3: put the leader's compaction of an open period's parts in place
of the parts it read (flush/compact-parts.ts), keeping what was appended since
after it. Only while the period is open, and only if no other compaction came
between the leader's read and this (another leader's, around a lease
handover): the compaction count is the guard, since merges only ever append.

KEYS[1] closed               string highest period boundary (ms) closed so far
KEYS[2] p:<P>:parts          string the period's packed parts
KEYS[3] p:<P>:compactions    string how many compactions the parts have had

ARGV[1] P (boundary ms), ARGV[2] the compaction count the leader read before
its read, ARGV[3] the bytes it read (the first ARGV[3] bytes of KEYS[2]),
ARGV[4] their compacted form

Returns {1, bytes} done (the parts' length now), {0, 'closed'} when P is
closed (its leader reads it as it is), {0, 'raced'} when the parts were
compacted since the read (nothing changed).
]]
local closed = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= closed then
  return {0, 'closed'}
end
if tonumber(redis.call('GET', KEYS[3]) or '0') ~= tonumber(ARGV[2]) then
  return {0, 'raced'}
end
local read = tonumber(ARGV[3])
local len = redis.call('STRLEN', KEYS[2])
if len < read then
  return {0, 'raced'}
end
local tail = ''
if len > read then tail = redis.call('GETRANGE', KEYS[2], read, -1) end
-- Set, then append (no Lua string of the whole: the tail is what was appended since the read, usually small).
redis.call('SET', KEYS[2], ARGV[4])
if #tail > 0 then redis.call('APPEND', KEYS[2], tail) end
redis.call('INCR', KEYS[3])
-- The commit unlinks the count with the period; the expiry only keeps it from outliving a period that an earlier
-- tallyd (commitPeriod-13, which knows no count) commits.
redis.call('PEXPIRE', KEYS[3], 86400000)
return {1, #ARGV[4] + #tail}
