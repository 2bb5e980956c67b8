--[[
include outbox: the outbox is a Redis Stream of chunks, one entry per chunk:
  d = the chunk's text ('\n'-terminated Graphite lines), n = its line count,
  b = its byte count (#d).
Beside it: outbox_bytes (string) = the sum of b over the entries;
outbox_acked:<sink> = the id of the last entry that sink delivered (its
cursor); outbox_claim:<sink> = the id of the last entry of the read the sink
is writing now (claimOutbox-4 sets it, ackOutbox-5 clears it).

Trim rule: the bound (outboxMaxBytes) drops the oldest entries AFTER the
claim, never a claimed one, so an entry that a sink is writing is never both
delivered and counted as dropped, and an ack (which names an id) never
removes an entry that was not sent. The outbox can thus exceed its bound by
at most one claimed read (a few MiB). Entries dropped are counted exactly
(lines and bytes), returned to the caller.

Stream ids are compared as (ms, seq) pairs; both parts fit a Lua double.
]]

-- -1, 0, 1 as stream id a <, =, > b.
local function outbox_id_cmp(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  if am ~= bm then return am < bm and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end

-- The value of field f in a stream entry's flat field list.
local function outbox_field(fields, f)
  for j = 1, #fields, 2 do
    if fields[j] == f then return fields[j + 1] end
  end
  return nil
end

-- XADDs one chunk of n lines as {d, n, b} and adds its bytes to outbox_bytes. The caller counts the lines
-- (a gsub over the chunk here copied every byte of every period through Lua: ~0.7 µs of Redis a name).
local function outbox_add(stream, bytesKey, chunk, n)
  redis.call('XADD', stream, '*', 'd', chunk, 'n', n, 'b', #chunk)
  redis.call('INCRBY', bytesKey, #chunk)
end

-- Drops the oldest unclaimed entries while outbox_bytes > maxBytes.
-- Returns dropped lines, dropped bytes.
local function outbox_trim(stream, bytesKey, claimKey, maxBytes)
  local total = tonumber(redis.call('GET', bytesKey) or '0')
  if total <= maxBytes then return 0, 0 end
  local claim = redis.call('GET', claimKey)
  local start = claim and ('(' .. claim) or '-'
  local lines, bytes = 0, 0
  while total > maxBytes do
    local batch = redis.call('XRANGE', stream, start, '+', 'COUNT', 8)
    if #batch == 0 then break end
    for _, e in ipairs(batch) do
      if total <= maxBytes then break end
      local b = tonumber(outbox_field(e[2], 'b')) or 0
      redis.call('XDEL', stream, e[1])
      total = total - b
      bytes = bytes + b
      lines = lines + (tonumber(outbox_field(e[2], 'n')) or 0)
      start = '(' .. e[1]
    end
  end
  if bytes > 0 then redis.call('DECRBY', bytesKey, bytes) end
  return lines, bytes
end
