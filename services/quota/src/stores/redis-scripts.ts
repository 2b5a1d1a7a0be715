/**
 * Lua for the Redis store: one script per operation, each atomic, each given `now` by the caller
 * (the injected clock; never Redis TIME). Semantics are those of store.ts, line for line the
 * same as memory.ts.
 *
 * Keys of one scope (API key + tier), both hash-tagged to one slot, both with a TTL:
 *   KEYS[1]  ZSET  member = request id, score = reservation time (ms)    the window log
 *   KEYS[2]  HASH  request id → "<tokens>,<settled 0|1>";  field "" → Σ tokens in the window;
 *                  lease id → "<tokens>,<released 0|1>,<requests>";  field "#" → Σ (requests − 1)
 *                  over the lease entries in the window (absent = 0: no lease, one entry = one request)
 * (request ids are never empty and never "#", so these fields cannot collide).
 * Requests used = ZCARD + the "#" field.
 * ARGV: now, windowMs, requests limit (-1 = unlimited), tokens limit (-1 = unlimited), request id, tokens.
 * Every reply ends with the window snapshot: requests used, requests resetAt, tokens used, tokens resetAt.
 */

const prelude = `
local log, h = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local reqLimit = tonumber(ARGV[3])
local tokLimit = tonumber(ARGV[4])
local SUM = ''
local EXTRA = '#'
local CHUNK = 500

local function tokensOf(v)
  return tonumber(string.match(v, '^(%-?%d+)'))
end

-- Reservations an entry counts as: a lease's block, else 1.
local function requestsOf(v)
  local n = string.match(v, '^%-?%d+,%d,(%d+)$')
  if n then return tonumber(n) end
  return 1
end

local function hmget(ids)
  local out = {}
  for i = 1, #ids, CHUNK do
    local vals = redis.call('HMGET', h, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
    for j = 1, #vals do out[#out + 1] = vals[j] end
  end
  return out
end

-- Drops reservations that left the window (score <= now - window) and their tokens from the
-- sum; returns how many remain.
local function prune()
  local cutoff = now - window
  local expired = redis.call('ZRANGEBYSCORE', log, '-inf', cutoff)
  if #expired == 0 then return redis.call('ZCARD', log) end
  local freed = 0
  local freedExtra = 0
  local vals = hmget(expired)
  for i = 1, #vals do
    if vals[i] then
      freed = freed + tokensOf(vals[i])
      freedExtra = freedExtra + requestsOf(vals[i]) - 1
    end
  end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', cutoff)
  local count = redis.call('ZCARD', log)
  if count == 0 then
    redis.call('DEL', h)
    return 0
  end
  for i = 1, #expired, CHUNK do
    redis.call('HDEL', h, unpack(expired, i, math.min(i + CHUNK - 1, #expired)))
  end
  -- Never pass -0: Lua formats it as "-0", which HINCRBY rejects as not an integer.
  if freed ~= 0 then redis.call('HINCRBY', h, SUM, -freed) end
  if freedExtra ~= 0 then redis.call('HINCRBY', h, EXTRA, -freedExtra) end
  return count
end

-- Requests charged beyond one per entry (leases), after prune.
local function extraOf()
  return tonumber(redis.call('HGET', h, EXTRA) or '0')
end

-- {requests used, requests resetAt, tokens used, tokens resetAt}, given the pruned count and sum
-- (requests used = entries + the leases' extra requests).
local function snapshot(count, total)
  if count == 0 then return {0, now, 0, now} end
  local newest = redis.call('ZREVRANGE', log, 0, 0, 'WITHSCORES')
  local reqReset = tonumber(newest[2]) + window
  local tokReset = now
  if total > 0 then
    local v = redis.call('HGET', h, newest[1])
    if v and tokensOf(v) > 0 then
      tokReset = reqReset
    else
      -- The newest reservation still holding tokens (a cancelled one may have settled to 0).
      local i = 1
      local found = false
      while i < count and not found do
        local batch = redis.call('ZREVRANGE', log, i, i + 31, 'WITHSCORES')
        local ids = {}
        for j = 1, #batch, 2 do ids[#ids + 1] = batch[j] end
        local vals = redis.call('HMGET', h, unpack(ids))
        for j = 1, #vals do
          if vals[j] and tokensOf(vals[j]) > 0 then
            tokReset = tonumber(batch[2 * j]) + window
            found = true
            break
          end
        end
        i = i + 32
      end
    end
  end
  return {count + extraOf(), reqReset, total, tokReset}
end

local function reply(head, count, total)
  local s = snapshot(count, total)
  for i = 1, 4 do head[#head + 1] = s[i] end
  return head
end

-- Prunes, then reads the window's token sum and entry \`id\`: count, total, the entry (or false).
local function openEntry(id)
  local count = prune()
  local got = redis.call('HMGET', h, SUM, id)
  return count, tonumber(got[1] or '0'), got[2]
end

-- Adds entry \`id\` (value as in the hash layout above) charging \`tokens\` and \`extra\` requests
-- beyond one, and returns reply(head, …). Both keys live exactly as long as their newest entry
-- stays in the window (HSET on an existing hash keeps its TTL, so every add sets it).
local function add(id, value, tokens, extra, head, count, total)
  redis.call('ZADD', log, now, id)
  redis.call('HSET', h, id, value)
  if tokens ~= 0 then redis.call('HINCRBY', h, SUM, tokens) end
  if extra ~= 0 then redis.call('HINCRBY', h, EXTRA, extra) end
  local resetAt = #head + 2 -- requests resetAt in the reply (reply appends to head)
  local result = reply(head, count + 1, total + tokens)
  local ttl = math.max(window, result[resetAt] - now)
  redis.call('PEXPIRE', log, ttl)
  redis.call('PEXPIRE', h, ttl)
  return result
end
`;

/** Reply: allowed, duplicate, deniedBy (0 none, 1 requests, 2 tokens), retryAfterMs, retryable, …snapshot. */
export const RESERVE_LUA = `${prelude}
local id = ARGV[5]
local est = tonumber(ARGV[6])
if reqLimit < 0 and tokLimit < 0 then return {1, 0, 0, 0, 1, 0, now, 0, now} end
local count, total, entry = openEntry(id)
if entry then return reply({1, 1, 0, 0, 1}, count, total) end
if tokLimit >= 0 and est > tokLimit then return reply({0, 0, 2, 0, 0}, count, total) end
if reqLimit == 0 then return reply({0, 0, 1, 0, 0}, count, total) end
local extra = extraOf()
local reqDeny = reqLimit >= 0 and count + extra + 1 > reqLimit
local tokDeny = tokLimit >= 0 and total + est > tokLimit
if reqDeny or tokDeny then
  local reqRetry, tokRetry = 0, 0
  if reqDeny and extra == 0 then
    -- Every entry is one reservation: the (count - limit + 1)-th oldest must leave.
    local k = count - reqLimit
    local e = redis.call('ZRANGE', log, k, k, 'WITHSCORES')
    reqRetry = tonumber(e[2]) + window - now
  elseif reqDeny then
    local all = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
    local ids = {}
    for j = 1, #all, 2 do ids[#ids + 1] = all[j] end
    local vals = hmget(ids)
    local left = count + extra
    for j = 1, #ids do
      left = left - requestsOf(vals[j])
      if left + 1 <= reqLimit then
        reqRetry = tonumber(all[2 * j]) + window - now
        break
      end
    end
  end
  if tokDeny then
    local all = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
    local ids = {}
    for j = 1, #all, 2 do ids[#ids + 1] = all[j] end
    local vals = hmget(ids)
    local s = total
    for j = 1, #ids do
      s = s - tokensOf(vals[j])
      if s + est <= tokLimit then
        tokRetry = tonumber(all[2 * j]) + window - now
        break
      end
    end
  end
  local by = 2
  if reqDeny and ((not tokDeny) or reqRetry >= tokRetry) then by = 1 end
  return reply({0, 0, by, math.max(reqRetry, tokRetry), 1}, count, total)
end
return add(id, ARGV[6] .. ',0', est, 0, {1, 0, 0, 0, 1}, count, total)
`;

/** Reply: applied (0/1), …snapshot. HSET on an existing hash keeps its TTL. */
export const SETTLE_LUA = `${prelude}
local id = ARGV[5]
if reqLimit < 0 and tokLimit < 0 then return {0, 0, now, 0, now} end
local count, total, entry = openEntry(id)
local applied = 0
if entry then
  -- A lease entry ("t,r,n") does not match: only releaseLease settles it.
  local charged, settled = string.match(entry, '^(%-?%d+),(%d)$')
  if settled == '0' then
    redis.call('HSET', h, id, ARGV[6] .. ',1')
    local delta = tonumber(ARGV[6]) - tonumber(charged)
    if delta ~= 0 then redis.call('HINCRBY', h, SUM, delta) end
    total = total + delta
    applied = 1
  end
end
return reply({applied}, count, total)
`;

/** Reply: …snapshot. Prunes (invisible) but charges nothing. */
export const PEEK_LUA = `${prelude}
if reqLimit < 0 and tokLimit < 0 then return {0, now, 0, now} end
local count = prune()
return snapshot(count, tonumber(redis.call('HGET', h, SUM) or '0'))
`;

/**
 * ARGV[5] lease id, ARGV[6] requests wanted, ARGV[7] tokens wanted, ARGV[8] headroom share.
 * Reply: granted requests, granted tokens, …snapshot. The grant is leaseGrant (store.ts) line for line.
 */
export const LEASE_LUA = `${prelude}
local id = ARGV[5]
local askReq = tonumber(ARGV[6])
local askTok = tonumber(ARGV[7])
local headroom = tonumber(ARGV[8])
if reqLimit < 0 and tokLimit < 0 then return {0, 0, 0, now, 0, now} end
local count, total, entry = openEntry(id)
if entry then return reply({0, 0}, count, total) end
local used = count + extraOf()
local factor = 1
local function fit(limit, usedNow, asked)
  if limit < 0 or asked <= 0 then return end
  local available = limit - usedNow - math.ceil(headroom * limit)
  if available < 0 then available = 0 end
  factor = math.min(factor, available / asked)
end
fit(reqLimit, used, askReq)
fit(tokLimit, total, askTok)
local grantReq = math.floor(askReq * factor)
if grantReq < 1 then return reply({0, 0}, count, total) end
local grantTok = math.floor(askTok * factor)
return add(id, grantTok .. ',0,' .. grantReq, grantTok, grantReq - 1, {grantReq, grantTok}, count, total)
`;

/** ARGV[5] lease id, ARGV[6] unused requests, ARGV[7] unused tokens (signed). Reply: applied (0/1), …snapshot. */
export const RELEASE_LEASE_LUA = `${prelude}
local id = ARGV[5]
if reqLimit < 0 and tokLimit < 0 then return {0, 0, now, 0, now} end
local count, total, entry = openEntry(id)
local applied = 0
if entry then
  local charged, released, n = string.match(entry, '^(%-?%d+),(%d),(%d+)$')
  if released == '0' then
    local unusedReq = math.min(math.max(0, tonumber(ARGV[6])), tonumber(n))
    local tokens = math.max(0, tonumber(charged) - tonumber(ARGV[7]))
    redis.call('HSET', h, id, tokens .. ',1,' .. (tonumber(n) - unusedReq))
    if unusedReq ~= 0 then redis.call('HINCRBY', h, EXTRA, -unusedReq) end
    local delta = tokens - tonumber(charged)
    if delta ~= 0 then redis.call('HINCRBY', h, SUM, delta) end
    total = total + delta
    applied = 1
  end
end
return reply({applied}, count, total)
`;
