"""RedisStore's compare-and-set save: its Lua script, its answers, and write ids.

Layout in Redis
---------------
One string key per session: ``prefix + sha256(session_id).hexdigest()``. Neither the key
nor the value holds the session ID itself, so reading Redis (a dump, ``MONITOR``, a
replica) reveals no session ID. The value is a small header and the record's JSON
(pydantic, never pickle), its ``id`` left empty::

    b"<version> <write id>[,<earlier write id>]...|" + SessionCodec.encode(replace(session, id=""))

``version`` is what the compare-and-set compares; a ``write id`` is 16 random hex digits
drawn per save. The header keeps the ids of the last ``KEPT_WRITE_IDS`` saves, newest
first (the one that wrote ``version``, then ``version - 1``, ...), so that a save the
client library sent twice (a retry after a dropped reply) is recognised as already done
instead of reported as a conflict, even when up to ``KEPT_WRITE_IDS - 1`` other saves
came in between. The key's native TTL is the record's ``expires_at``, so nothing stale
lingers.

Ending a session (saving it expired) leaves ``b"<version> <write ids>~"`` for
``TOMBSTONE_SECONDS`` instead of the record: it reads as no session, and tells that
same ending, sent again, that it is done, where a bare deletion would answer "ended by
someone else".

Round trips
-----------
``load`` is one ``GET``; ``delete`` is one ``DEL``; ``save`` is one ``EVALSHA`` of a
Lua script that reads the stored header and writes only when the version matches. The
first save on a server that has not seen the script yet gets ``NOSCRIPT`` and falls back
to one ``EVAL``, which also caches the script on that server: one extra round trip per
server, once. Every command touches exactly one key, so the store works unchanged on
Redis Cluster and Valkey (no hash tags needed).
"""

from __future__ import annotations

import os
import random
from datetime import datetime

from typed_sessions.core.ids import SessionId
from typed_sessions.stores.protocol import Conflict
from typed_sessions.stores.redis_calls import Reply
from typed_sessions.stores.redis_format import (
    HEADER_MAX,
    KEPT_WRITE_IDS,
    TOMBSTONE_SECONDS,
    corrupt_error,
    unexpected,
)
from typed_sessions.stores.redis_scripts import EARLIER_FUNCTION, Script, with_index

__all__ = [
    "ABSENT",
    "INDEXED_SAVE",
    "NOT_A_RECORD",
    "NO_ID",
    "SAVE",
    "SAVED",
    "SAVE_SCRIPT",
    "new_write_id",
    "save_control",
    "save_outcome",
]


# KEYS[1] the session key (its first HEADER_MAX bytes hold the header).
# ARGV[1] the new value, its header naming this save's write id alone (the script adds
# the earlier ids); ARGV[2] "<expected> <ttl> <discard> <write id>": the expected
# version ("0": the record must be absent), the time to live in ms ("0": the record has
# ended: leave a tombstone instead), "1" to treat an unreadable header as absent, and this
# save's write id. (One argument for four: fewer to pack on every save.)
# A tombstone reads as "no record", except to the very save that left it, sent again.
# Returns 0 when written (or ended), N >= 1 for a conflict with stored version N,
# -1 for a conflict with no record, -2 when the stored value is not a record.
SAVE_SCRIPT = (
    EARLIER_FUNCTION
    + f"""\
local expected, ttl, discard, mine = string.match(ARGV[2], '^(%d+) (%d+) ([01]) (%x+)$')
local function exact(version, ids)  -- as redis_format.HEADER: 1 to {KEPT_WRITE_IDS} ids of 16
  return #version <= 20 and (#ids + 1) % 17 == 0 and #ids < {17 * KEPT_WRITE_IDS}
    and (string.gsub(ids .. ',', '{"[0-9a-f]" * 16},', '')) == ''
end
local function applied(version, ids)  -- this very save, sent again: its id wrote expected + 1
  local back = 0
  for id in string.gmatch(ids, '%x+') do
    if id == mine and tonumber(version) - back == tonumber(expected) + 1 then return true end
    back = back + 1
  end
  return false
end
local head = redis.pcall('GETRANGE', KEYS[1], 0, {HEADER_MAX - 1})
local found, ids = false, false
if type(head) == 'table' or (head == '' and redis.call('EXISTS', KEYS[1]) == 1) then
  if discard ~= '1' then return -2 end
elseif head ~= '' then
  local version, id, mark = string.match(head, '^([1-9]%d*) ([%x,]+)([|~])')
  if mark and not exact(version, id) then mark = nil end
  if mark == '|' then
    found, ids = version, id
  elseif mark == '~' and #head == #version + #id + 2 then  -- a tombstone, and nothing more
    if applied(version, id) then return 0 end
  elseif discard ~= '1' then
    return -2
  end
end
if found ~= (expected ~= '0' and expected) then
  if not found then return -1 end
  if applied(found, ids) then return 0 end
  return tonumber(found)
end
if ttl == '0' then
  local tombstone = string.format('%d %s%s~', tonumber(expected) + 1, mine, earlier(ids))
  redis.call('SET', KEYS[1], tombstone, 'PX', {TOMBSTONE_SECONDS * 1000})
elseif ids then
  local bar = string.find(ARGV[1], '|', 1, true)
  local value = string.sub(ARGV[1], 1, bar - 1) .. earlier(ids) .. string.sub(ARGV[1], bar)
  redis.call('SET', KEYS[1], value, 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
end
return 0
"""
)
SAVE = Script.of(SAVE_SCRIPT)
# The same, and the subject index's step (one server only: two keys, of two slots).
INDEXED_SAVE = Script.of(with_index(SAVE_SCRIPT))

SAVED, ABSENT, NOT_A_RECORD = 0, -1, -2
NO_ID = SessionId("")  # records are stored without their ID


def save_outcome(reply: Reply, expected: int) -> Conflict | None:
    """What the save script's ``reply`` means: ``None`` when saved, else the conflict.

    Raises:
        StoreCorruptError: the stored value is not a record.
        StoreUnavailableError: a reply the script never gives.
    """
    if isinstance(reply, int):
        if reply == SAVED:
            return None
        if reply == NOT_A_RECORD:
            corrupt_error("the stored value has no record header")
        if reply == ABSENT or reply > 0:
            return Conflict(expected=expected, found=None if reply < 0 else reply)
    raise unexpected(reply, "the save script")


# Write ids come from a generator of our own, seeded from os.urandom and reseeded in
# every forked child: an application seeding the global ``random`` (in each worker, for
# reproducibility) cannot make two workers draw the same ids.
_write_ids = random.Random()  # noqa: S311 - uniqueness, not secrecy
os.register_at_fork(after_in_child=_write_ids.seed)


def new_write_id() -> str:
    # A write id must be unique per save call, not secret: it never leaves Redis and only
    # tells this call's own resend (by the client library, after a lost reply) from
    # another writer's save. (Not a digest of the record: two increments from the same
    # version write the same bytes, and the second must conflict.) No system call.
    return f"{_write_ids.getrandbits(64):016x}"


def save_control(
    expected: int, expires: datetime, now: datetime, discard: bool, write_id: str
) -> str:
    """The save script's ``ARGV[2]`` (see above): the time to live is ``expires - now`` in
    whole milliseconds, rounded up (``0`` once ended)."""
    left = expires - now  # integers only: no float rounding of the deadline
    ttl_ms = max((left.days * 86_400 + left.seconds) * 1000 - (-left.microseconds // 1000), 0)
    return f"{expected} {ttl_ms} {'1' if discard else '0'} {write_id}"
