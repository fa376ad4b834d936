"""The Redis engine's Lua scripts: each step of a chat message is one atomic script.

Plain text, so this module needs no ``redis`` import; ``connection.py`` runs
them by SHA1 (docs/redis.md lists the keys they touch). Every script works on
the four keys of one session (KEYS: session, history, seen, leases) and takes
the session's incarnation (empty: do not check), so a connection admitted to
an earlier life of a session id never reads or writes a later one. A frame
published to a session's channel is ``incarnation .. "\\n" .. exclude .. "\\n"
.. frame``, as ``chatbuddy.engine.pubsub`` encodes it; an empty channel
argument means "store, publish nothing".
"""

from __future__ import annotations

import hashlib

# Shared by the scripts below: whether the session is there and the one asked for.
_CHECK = """
local function check(incarnation)
  if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
  if incarnation ~= '' and (redis.call('HGET', KEYS[1], 'incarnation') or '') ~= incarnation then
    return -2
  end
  return 1
end
local function slide(ttl)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
"""

# Creates the session unless its id is taken, or an earlier session's history or
# dedup set is still there (they would go to the new owner of the id).
# KEYS: session, history, seen, leases. ARGV: ttl_ms, field, value, ...
_CREATE = """
for i = 1, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Marks activity on the session. ARGV: ttl_ms, now, connected (1/0), incarnation.
# Returns {status} (-1 gone, -2 replaced) or {1, field, value, ...}.
_TOUCH = (
    _CHECK
    + """
local status = check(ARGV[4])
if status ~= 1 then return {status} end
redis.call('HSET', KEYS[1], 'last_activity', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'connected_at', ARGV[2]) end
slide(ARGV[1])
local found = redis.call('HGETALL', KEYS[1])
table.insert(found, 1, 1)
return found
"""
)

# Stores a message (with its id) in id order, trims, counts, slides expiry.
_STORE = (
    _CHECK
    + """
local function store(id, encoded, limit, ttl, now)
  redis.call('ZADD', KEYS[2], id, encoded)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(limit + 1))
  redis.call('HINCRBY', KEYS[1], 'message_count', 1)
  local last = tonumber(redis.call('HGET', KEYS[1], 'last_message_id') or '0')
  if id > last then redis.call('HSET', KEYS[1], 'last_message_id', id) end
  redis.call('HSET', KEYS[1], 'last_activity', now)
  slide(ttl)
end
local function earlier(before, count)
  if count <= 0 then return {} end
  local found = redis.call('ZREVRANGEBYSCORE', KEYS[2], '(' .. before, '-inf', 'LIMIT', 0, count)
  local oldest_first = {}
  for i = #found, 1, -1 do table.insert(oldest_first, found[i]) end
  return oldest_first
end
"""
)

# A user's message: dedup, new id (+ the reply's, leased to the caller), store,
# publish it as user_message, and read the messages before it that the agent wants.
# A resend of a stored message instead says what became of its reply: answered
# (with it), pending (another producer holds the lease) or orphaned (the lease
# is now the caller's: answer again).
# ARGV: message json without id, client_message_id or '', limit, ttl_ms, now,
# window, channel, exclude, frame head, frame tail, recent, incarnation,
# now_ms, lease_ms.
# Returns {-1} (no session), {-2} (replaced), {1, id, json, {earlier...}} or
# {0, id, json, state, reply json or '', {earlier...}}.
_ADD_USER = (
    _STORE
    + """
local status = check(ARGV[12])
if status ~= 1 then return {status} end
local now_ms, lease_ms, recent = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[11])
if ARGV[2] ~= '' then
  local seen = redis.call('ZSCORE', KEYS[3], ARGV[2])
  if seen then
    local id = tonumber(seen)
    local original = redis.call('ZRANGEBYSCORE', KEYS[2], id, id)[1] or ''
    local reply = redis.call('ZRANGEBYSCORE', KEYS[2], id + 1, id + 1)[1]
    if reply then return {0, id, original, 'answered', reply, {}} end
    local lease = tonumber(redis.call('HGET', KEYS[4], id + 1) or '0')
    if lease > now_ms then return {0, id, original, 'pending', '', {}} end
    redis.call('HSET', KEYS[4], id + 1, now_ms + lease_ms)
    redis.call('PEXPIRE', KEYS[4], ARGV[4])
    return {0, id, original, 'orphaned', '', earlier(id, recent)}
  end
end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 2) - 1
local message = cjson.decode(ARGV[1])
message['id'] = id
local encoded = cjson.encode(message)
store(id, encoded, tonumber(ARGV[3]), ARGV[4], ARGV[5])
redis.call('HSET', KEYS[4], id + 1, now_ms + lease_ms)
redis.call('PEXPIRE', KEYS[4], ARGV[4])
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[3], id, ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[6]) + 1))
end
if ARGV[7] ~= '' then
  local framed = ARGV[9] .. encoded .. ARGV[10]
  redis.call('PUBLISH', ARGV[7], ARGV[12] .. '\\n' .. ARGV[8] .. '\\n' .. framed)
end
return {1, id, encoded, earlier(id, recent)}
"""
)

# A reply under its reserved id (ending its lease), then its frame published.
# ARGV: message json, id, limit, ttl_ms, now, channel, frame, incarnation.
# Returns -1 (no session), -2 (replaced) or 1.
_ADD_REPLY = (
    _STORE
    + """
local status = check(ARGV[8])
if status ~= 1 then return status end
store(tonumber(ARGV[2]), ARGV[1], tonumber(ARGV[3]), ARGV[4], ARGV[5])
redis.call('HDEL', KEYS[4], ARGV[2])
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[8] .. '\\n\\n' .. ARGV[7]) end
return 1
"""
)

#: name -> script text
SCRIPTS = {"create": _CREATE, "touch": _TOUCH, "add_user": _ADD_USER, "add_reply": _ADD_REPLY}
#: name -> the SHA1 Redis knows the script by
SHAS = {
    name: hashlib.sha1(body.encode()).hexdigest()  # noqa: S324 - Redis's script id, not security
    for name, body in SCRIPTS.items()
}
