"""The Redis engine's Lua scripts: each step of a chat message is one atomic script.

Plain text, so this module needs no ``redis`` import; ``connection.py`` runs
them by SHA1 (docs/redis.md lists the keys they touch). Every script but
``unindex`` works on the six keys of one session (KEYS: session, history, seen,
leases, notes, reactions) and most take
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
  if incarnation == '' then
    if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
    return 1
  end
  local current = redis.call('HGET', KEYS[1], 'incarnation')
  if current == incarnation then return 1 end
  if not current and redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
  return -2
end
local function slide(ttl)
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
local function hold_of()
  local h = redis.call('HMGET', KEYS[1],
    'hold_operator', 'hold_since', 'hold_until', 'hold_until_ms')
  if not h[1] then return {} end
  return {h[1], h[2], h[3], h[4]}
end
"""

# Creates the session unless its id is taken, or an earlier session's history or
# dedup set is still there (they would go to the new owner of the id); an earlier
# life's notes and reactions are dropped.
# KEYS: session, history, seen, leases, notes, reactions. ARGV: ttl_ms, field, value, ...
_CREATE = """
for i = 1, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
redis.call('DEL', KEYS[5], KEYS[6])
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

# Stores a message (with its id) in id order, trims, counts. The caller slides
# expiry after its last write (a key created after the slide would never expire).
_STORE = (
    _CHECK
    + """
local function store(id, encoded, limit, now)
  redis.call('ZADD', KEYS[2], id, encoded)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(limit + 1))
  redis.call('HINCRBY', KEYS[1], 'message_count', 1)
  local last = tonumber(redis.call('HGET', KEYS[1], 'last_message_id') or '0')
  if id > last then
    redis.call('HSET', KEYS[1], 'last_message_id', id, 'last_activity', now)
  else
    redis.call('HSET', KEYS[1], 'last_activity', now)
  end
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
# With quiet = '1' (the sender is the session's only tab on its node) it is not
# published unless another node listens to the session, and then told = 0 says
# the caller must publish it. A resend of a stored message instead says what
# became of its reply: answered (with it), pending (another producer holds the
# lease) or orphaned (the lease is now the caller's: answer again).
# ARGV: message json without id, client_message_id or '', limit, ttl_ms, now,
# window, channel, exclude, frame head, frame tail, recent, incarnation,
# now_ms, lease_ms, quiet.
# Returns {-1} (no session), {-2} (replaced), {1, id, '', {earlier...}, hold, told}
# (the caller knows what it sent) or {0, id, json, state, reply json or '',
# {earlier...}, hold}; hold is the operator's hold ({operator, since, until,
# until_ms} or {}).
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
    if reply then return {0, id, original, 'answered', reply, {}, hold_of()} end
    local lease = tonumber(redis.call('HGET', KEYS[4], id + 1) or '0')
    if lease > now_ms then return {0, id, original, 'pending', '', {}, hold_of()} end
    redis.call('HSET', KEYS[4], id + 1, now_ms + lease_ms)
    redis.call('PEXPIRE', KEYS[4], ARGV[4])
    return {0, id, original, 'orphaned', '', earlier(id, recent), hold_of()}
  end
end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 2) - 1
local message = cjson.decode(ARGV[1])
message['id'] = id
local encoded = cjson.encode(message)
store(id, encoded, tonumber(ARGV[3]), ARGV[5])
redis.call('HSET', KEYS[4], id + 1, now_ms + lease_ms)
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[3], id, ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[6]) + 1))
end
slide(ARGV[4])
local told = 1
if ARGV[7] ~= '' then
  if ARGV[15] ~= '1' then
    local framed = ARGV[9] .. encoded .. ARGV[10]
    redis.call('PUBLISH', ARGV[7], ARGV[12] .. '\\n' .. ARGV[8] .. '\\n' .. framed)
  elseif redis.call('PUBSUB', 'NUMSUB', ARGV[7])[2] > 1 then
    told = 0
  end
end
return {1, id, '', earlier(id, recent), hold_of(), told}
"""
)

# A reply under its reserved id (ending its lease), then its frame published. It
# does not slide expiry: its message did, a moment before, and wrote every key it
# writes (ARGV[4], ttl_ms, is unused).
# ARGV: message json, id, limit, ttl_ms, now, channel, frame, incarnation.
# Returns -1 (no session), -2 (replaced) or 1.
_ADD_REPLY = (
    _STORE
    + """
local status = check(ARGV[8])
if status ~= 1 then return status end
store(tonumber(ARGV[2]), ARGV[1], tonumber(ARGV[3]), ARGV[5])
redis.call('HDEL', KEYS[4], ARGV[2])
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[8] .. '\\n\\n' .. ARGV[7]) end
return 1
"""
)

# A message that needs no reply (an operator's) under a new id, then published.
# ARGV: message json without id, limit, ttl_ms, now, channel, exclude, frame head,
# frame tail, incarnation. Returns {status} or {1, id, json}.
_ADD_MESSAGE = (
    _STORE
    + """
local status = check(ARGV[9])
if status ~= 1 then return {status} end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local message = cjson.decode(ARGV[1])
message['id'] = id
local encoded = cjson.encode(message)
store(id, encoded, tonumber(ARGV[2]), ARGV[4])
slide(ARGV[3])
if ARGV[5] ~= '' then
  local framed = ARGV[7] .. encoded .. ARGV[8]
  redis.call('PUBLISH', ARGV[5], ARGV[9] .. '\\n' .. ARGV[6] .. '\\n' .. framed)
end
return {1, id, encoded}
"""
)

# An operator takes (or extends) the hold, unless another operator's is live.
# ARGV: operator, now, now_ms, until, until_ms, incarnation, ttl_ms.
# Returns {status}, {0, their operator, since, until, until_ms} or
# {1, operator, since, until, until_ms, renewed 1/0}.
_TAKE_HOLD = (
    _CHECK
    + """
local status = check(ARGV[6])
if status ~= 1 then return {status} end
local h = hold_of()
local live = h[1] and tonumber(h[4]) > tonumber(ARGV[3])
if live and h[1] ~= ARGV[1] then return {0, h[1], h[2], h[3], h[4]} end
local since, renewed = ARGV[2], 0
if live then since, renewed = h[2], 1 end
redis.call('HSET', KEYS[1], 'hold_operator', ARGV[1], 'hold_since', since, 'hold_until', ARGV[4],
  'hold_until_ms', ARGV[5], 'last_activity', ARGV[2])
redis.call('HDEL', KEYS[1], 'waiting_since')
slide(ARGV[7])
return {1, ARGV[1], since, ARGV[4], ARGV[5], renewed}
"""
)

# Ends the hold of ARGV[1] ('' whoever) if ARGV[3] is '0', or only a hold that
# has run out by now_ms (ARGV[2]) if it is '1'.
# Returns {-1} (no hold), {0, operator, since, until, until_ms} (a hold stays) or
# {1, operator, since, until, until_ms} (ended).
_RELEASE_HOLD = (
    _CHECK
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local h = hold_of()
if not h[1] then return {-1} end
local mine = ARGV[1] == '' or h[1] == ARGV[1]
local ran_out = tonumber(h[4]) <= tonumber(ARGV[2])
if not mine or (ARGV[3] == '1' and not ran_out) then return {0, h[1], h[2], h[3], h[4]} end
redis.call('HDEL', KEYS[1], 'hold_operator', 'hold_since', 'hold_until', 'hold_until_ms')
return {1, h[1], h[2], h[3], h[4]}
"""
)

# The customer asks for a person. ARGV: now, now_ms, incarnation, ttl_ms.
# Returns {status}: 1 marked now, 0 held or already waiting.
_REQUEST_HANDOFF = (
    _CHECK
    + """
local status = check(ARGV[3])
if status ~= 1 then return {status} end
redis.call('HSET', KEYS[1], 'last_activity', ARGV[1])
slide(ARGV[4])
local h = hold_of()
if h[1] and tonumber(h[4]) > tonumber(ARGV[2]) then return {0} end
if redis.call('HEXISTS', KEYS[1], 'waiting_since') == 1 then return {0} end
redis.call('HSET', KEYS[1], 'waiting_since', ARGV[1])
return {1}
"""
)

# An internal note. ARGV: note json, limit, ttl_ms. Returns -1 (no session) or 1.
_ADD_NOTE = (
    _CHECK
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('RPUSH', KEYS[5], ARGV[1])
redis.call('LTRIM', KEYS[5], -tonumber(ARGV[2]), -1)
slide(ARGV[3])
return 1
"""
)

# The customer's reaction to a reply. ARGV: message id, reaction ('' clears it),
# incarnation, ttl_ms, now. Returns {status}, {0} (no such reply) or
# {1, reaction before or '', role, route or ''}.
_REACT = (
    _CHECK
    + """
local status = check(ARGV[3])
if status ~= 1 then return {status} end
local found = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], ARGV[1])[1]
if not found then return {0} end
local message = cjson.decode(found)
if message['role'] == 'user' then return {0} end
local before = redis.call('HGET', KEYS[6], ARGV[1]) or ''
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[6], ARGV[1])
else
  redis.call('HSET', KEYS[6], ARGV[1], ARGV[2])
end
redis.call('HSET', KEYS[1], 'last_activity', ARGV[5])
slide(ARGV[4])
local route = message['agent']
if type(route) ~= 'string' then route = '' end
return {1, before, message['role'], route}
"""
)

# A read mark that only moves forward. ARGV: field, message id, incarnation,
# ttl_ms, now. Returns {status} or {1, the mark now}.
_MARK_READ = (
    _CHECK
    + """
local status = check(ARGV[3])
if status ~= 1 then return {status} end
local mark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > mark then
  mark = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], ARGV[1], mark)
end
redis.call('HSET', KEYS[1], 'last_activity', ARGV[5])
slide(ARGV[4])
return {1, mark}
"""
)

# Drops a member from an index (holds, waiting) if its score is at most ARGV[2]: a
# later score means another node indexed it anew meanwhile. KEYS: the index.
_UNINDEX = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""

#: name -> script text
SCRIPTS = {
    "create": _CREATE,
    "touch": _TOUCH,
    "add_user": _ADD_USER,
    "add_reply": _ADD_REPLY,
    "add_message": _ADD_MESSAGE,
    "take_hold": _TAKE_HOLD,
    "release_hold": _RELEASE_HOLD,
    "request_handoff": _REQUEST_HANDOFF,
    "add_note": _ADD_NOTE,
    "react": _REACT,
    "mark_read": _MARK_READ,
    "unindex": _UNINDEX,
}
#: name -> the SHA1 Redis knows the script by
SHAS = {
    name: hashlib.sha1(body.encode()).hexdigest()  # noqa: S324 - Redis's script id, not security
    for name, body in SCRIPTS.items()
}
