"""The Redis engine's Lua scripts: each step of a chat message is one atomic script.

Plain text, so this module needs no ``redis`` import; ``connection.py`` runs
them by SHA1 (docs/redis.md lists the keys they touch). A frame published to a
session's channel is ``exclude .. "\n" .. frame``, as ``chatbuddy.engine.pubsub``
encodes it; an empty channel argument means "store, publish nothing".
"""

from __future__ import annotations

import hashlib

# Creates the session hash unless it exists. KEYS: session. ARGV: ttl_ms, field, value, ...
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Marks activity on an existing session. KEYS: session, history, seen.
# ARGV: ttl_ms, now, connected (1/0). Returns the hash as a flat list, or {}.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('HSET', KEYS[1], 'last_activity', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'connected_at', ARGV[2]) end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return redis.call('HGETALL', KEYS[1])
"""

# Stores a message (with its id) in id order, trims, counts, slides expiry.
_STORE = """
local function store(id, encoded, limit, ttl, now)
  redis.call('ZADD', KEYS[2], id, encoded)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(limit + 1))
  redis.call('HINCRBY', KEYS[1], 'message_count', 1)
  local last = tonumber(redis.call('HGET', KEYS[1], 'last_message_id') or '0')
  if id > last then redis.call('HSET', KEYS[1], 'last_message_id', id) end
  redis.call('HSET', KEYS[1], 'last_activity', now)
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
"""

# A user's message: dedup, new id (+ the reply's), store, publish it as user_message,
# and read the messages before it that the agent wants.
# KEYS: session, history, seen. ARGV: message json without id, client_message_id or '',
# limit, ttl_ms, now, window, channel, exclude, frame head, frame tail, recent.
# Returns {-1} (no session), {0, id, json} (duplicate) or {1, id, json, {earlier json...}}.
_ADD_USER = (
    _STORE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if ARGV[2] ~= '' then
  local seen = redis.call('ZSCORE', KEYS[3], ARGV[2])
  if seen then
    local found = redis.call('ZRANGEBYSCORE', KEYS[2], seen, seen)
    return {0, tonumber(seen), found[1] or ''}
  end
end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 2) - 1
local message = cjson.decode(ARGV[1])
message['id'] = id
local encoded = cjson.encode(message)
store(id, encoded, tonumber(ARGV[3]), ARGV[4], ARGV[5])
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[3], id, ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[6]) + 1))
end
if ARGV[7] ~= '' then
  redis.call('PUBLISH', ARGV[7], ARGV[8] .. '\\n' .. ARGV[9] .. encoded .. ARGV[10])
end
local recent = tonumber(ARGV[11])
local earlier = {}
if recent > 0 then earlier = redis.call('ZRANGE', KEYS[2], -(recent + 1), -2) end
return {1, id, encoded, earlier}
"""
)

# A reply under its reserved id, then its frame published. KEYS: session, history, seen.
# ARGV: message json, id, limit, ttl_ms, now, channel, frame. Returns 0 (no session) or 1.
_ADD_REPLY = (
    _STORE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
store(tonumber(ARGV[2]), ARGV[1], tonumber(ARGV[3]), ARGV[4], ARGV[5])
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], '\\n' .. ARGV[7]) end
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
