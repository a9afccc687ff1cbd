"""The Lua scripts of RedisStore's subject index (see :mod:`.redis_index`)."""

from __future__ import annotations

import hashlib
from typing import Final, NamedTuple

from typed_sessions.stores.redis_format import KEPT_WRITE_IDS, TOMBSTONE_SECONDS

__all__ = ["DROP", "EARLIER_FUNCTION", "END", "FIND", "INDEX", "OVER_CAP", "Script", "with_index"]

# The write ids a new header keeps after its own: the newest of ``ids`` (a header's
# "<id>,<id>..." or nil), at most KEPT_WRITE_IDS - 1 of them, as ",<id>...".
EARLIER_FUNCTION: Final = f"""\
local function earlier(ids)
  local kept, count = '', 1
  for id in string.gmatch(ids or '', '%x+') do
    if count == {KEPT_WRITE_IDS} then break end
    kept, count = kept .. ',' .. id, count + 1
  end
  return kept
end
"""


class Script(NamedTuple):
    """A Lua script and its SHA-1, for ``EVALSHA``."""

    text: str
    sha: str

    @classmethod
    def of(cls, text: str) -> Script:
        return cls(text, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())


# The index step: KEYS[1] the subject's set, ARGV[1] the member,
# ARGV[2] "<score ms> <now ms> <ended: 0|1>", ARGV[3] "1" under a cap. Returns how many
# members the set holds, or 0 when the member was there already with this score or a
# later one (a save that moved no deadline: the common case, kept to one ZSCORE). Under
# a cap it counts the live members all the same: a resend of a save over the cap (its
# first reply lost) must be told so too.
_INDEX_FUNCTION = """\
local function index(key, member, spec, capped)
  local score, now, ended = string.match(spec, '^(%d+) (%d+) ([01])$')
  if ended == '0' then
    local held = redis.call('ZSCORE', key, member)
    if held and tonumber(held) >= tonumber(score) then  -- nothing to change
      if not capped then return 0 end
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
      return redis.call('ZCARD', key)
    end
  end
  if ended == '1' then
    redis.call('ZREM', key, member)
  else
    redis.call('ZADD', key, 'GT', score, member)
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIRE', key, math.max(tonumber(last[2]) - tonumber(now), 0) + 1000)
  end
  return redis.call('ZCARD', key)
end
"""
_INDEX_SCRIPT = _INDEX_FUNCTION + "return index(KEYS[1], ARGV[1], ARGV[2], ARGV[3] == '1')\n"

# The save script and the index step in one (one server only): KEYS[1] the record,
# KEYS[2] the index; ARGV[1] and ARGV[2] as for the save script, ARGV[3] and ARGV[4] as
# ARGV[1] and ARGV[2] of the index step, ARGV[5] the cap ("0": none). Returns the save
# script's reply, or -3: saved, and the index holds more members than the cap.
# The index's type is checked first: a script's writes are not undone when a later
# command fails, so the record is never saved without its entry.
_INDEXED_TAIL = """\
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'zset' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE the subject index is not a sorted set')
end
local reply = cas()
if reply == 0 then
  local count = index(KEYS[2], ARGV[3], ARGV[4], ARGV[5] ~= '0')
  if ARGV[5] ~= '0' and count > tonumber(ARGV[5]) then return -3 end
end
return reply
"""
OVER_CAP: Final = -3


def with_index(save_script: str) -> str:
    """The save script followed by the index step, as one script over two keys."""
    return _INDEX_FUNCTION + "local function cas()\n" + save_script + "end\n" + _INDEXED_TAIL


INDEX = Script.of(_INDEX_SCRIPT)
_INDEX = INDEX  # the name tests/test_redis_subjects.py reads

# Ending: KEYS[1] a session key, ARGV[1] what its record must hold at its last top-level
# ',"subject":' (pydantic writes the record's fields in order, ``data`` first, and a raw
# '"' after ',' is never inside a JSON string, so the last occurrence is the record's
# own field): ',"subject":"<subject>","auth_time":' for one subject, ',"subject":"' for
# any. ARGV[2] this ending's write id. Returns 1 when it matches, and leaves the
# tombstone an ending save leaves (see redis_save): "<version + 1> <ARGV[2]>,<earlier
# ids>~", for TOMBSTONE_SECONDS. So a resend of the save that wrote the record (its first
# reply lost) is told it is done instead of writing the record again, and this ending,
# sent again, finds its own id first and answers 1 again. Else 0 (nothing changed).
_END_SCRIPT = (
    EARLIER_FUNCTION
    + f"""\
local value = redis.pcall('GET', KEYS[1])
if type(value) ~= 'string' then return 0 end
local version, ids, mark = string.match(value, '^([1-9]%d*) ([%x,]+)([|~])')
if mark == '~' then  -- ended: by this very call, sent again?
  if #value == #version + #ids + 2 and string.sub(ids, 1, #ARGV[2]) == ARGV[2] then return 1 end
  return 0
elseif not mark then
  return 0
end
local at, from = nil, 1
while true do
  local found = string.find(value, ',"subject":', from, true)
  if not found then break end
  at, from = found, found + 1
end
if not at or string.sub(value, at, at + #ARGV[1] - 1) ~= ARGV[1] then return 0 end
local tombstone = string.format('%d %s%s~', tonumber(version) + 1, ARGV[2], earlier(ids))
redis.call('SET', KEYS[1], tombstone, 'PX', {TOMBSTONE_SECONDS * 1000})
return 1
"""
)
END = Script.of(_END_SCRIPT)

# Dropping entries found dead: KEYS[1] the set, ARGV pairs of member and the score it had
# when read; a member re-saved since (its score raised) is kept.
_DROP_SCRIPT = """\
local dropped = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[i + 1]) then
    dropped = dropped + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return dropped
"""
DROP = Script.of(_DROP_SCRIPT)

# Finding one member by its handle, on the server: KEYS[1] the set, ARGV[1] "<handle>:".
_FIND_SCRIPT = """\
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, #ARGV[1]) == ARGV[1] then
    return {member, redis.call('ZSCORE', KEYS[1], member)}
  end
end
return false
"""
FIND = Script.of(_FIND_SCRIPT)
