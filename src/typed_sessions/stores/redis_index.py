"""RedisStore's subject index: a subject's sessions, found without keyspace notifications.

Layout
------
One sorted set per subject, ``prefix + "subject:{" + sha256(subject) + "}"`` (the hash
tag keeps every key of one subject in one slot). Its members are
``"<handle>:<sha256(session ID)>"`` (the public handle, and the hex that names the
session's key), scored by the session's ``expires_at`` in Unix milliseconds. Each save of
a session with a subject adds or raises its member (``ZADD GT``), drops the members whose
time has passed (``ZREMRANGEBYSCORE``), and sets the set's own TTL to its latest
member's, so a subject's index never outlives its sessions. Listing and ending drop the
members whose session they find gone, ended, or saved for another subject.

Whose session a record is, is checked on the record itself, never trusted from the
index: ending runs a script on the session's key that deletes it only when the record's
top-level ``"subject"`` is the one asked for. So an index entry left stale (the same ID
saved for another subject) can never end another subject's session.

Order, not transactions
-----------------------
On one server (``Redis``, Valkey) a save with a subject is one script over both keys
(the record and the index): atomic, one round trip. On Redis Cluster the two keys live
in different slots, so the steps are ordered instead: the index entry is written
*before* the record (and once more after it, for a new record), and ended records are
removed *before* their index entries. Whatever step is interrupted, a live session is
never missing from its subject's index; what an interruption can leave is an index entry
without a live session, which the next list, end or save of that subject drops.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import NoScriptError, RedisError

from typed_sessions.core.clock import Clock
from typed_sessions.core.ids import SessionId
from typed_sessions.core.session import Session
from typed_sessions.core.subjects import (
    HANDLE_LENGTH,
    SessionInfo,
    check_subject,
    session_handle,
)
from typed_sessions.stores.redis_format import _HEADER, _HEADER_MAX, _unavailable

__all__ = ["OVER_CAP", "RedisSubjectIndex", "Script", "with_index"]


class Script(NamedTuple):
    """A Lua script and its SHA-1, for ``EVALSHA``."""

    text: str
    sha: str

    @classmethod
    def of(cls, text: str) -> Script:
        return cls(text, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())


# The index step: KEYS[1] the subject's set, ARGV[1] the member,
# ARGV[2] "<score ms> <now ms> <ended: 0|1>". Returns how many members the set holds.
_INDEX_FUNCTION = """\
local function index(key, member, spec)
  local score, now, ended = string.match(spec, '^(%d+) (%d+) ([01])$')
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
_INDEX_SCRIPT = _INDEX_FUNCTION + "return index(KEYS[1], ARGV[1], ARGV[2])\n"

# The save script and the index step in one (one server only): KEYS[1] the record,
# KEYS[2] the index; ARGV[1] and ARGV[2] as for the save script, ARGV[3] and ARGV[4] as
# ARGV[1] and ARGV[2] of the index step, ARGV[5] the cap ("0": none). Returns the save
# script's reply, or -3: saved, and the index holds more members than the cap.
_INDEXED_TAIL = """\
local reply = cas()
if reply == 0 then
  local count = index(KEYS[2], ARGV[3], ARGV[4])
  if ARGV[5] ~= '0' and count > tonumber(ARGV[5]) then return -3 end
end
return reply
"""
OVER_CAP: Final = -3


def with_index(save_script: str) -> str:
    """The save script followed by the index step, as one script over two keys."""
    return _INDEX_FUNCTION + "local function cas()\n" + save_script + "end\n" + _INDEXED_TAIL


_INDEX = Script.of(_INDEX_SCRIPT)

# Ending: KEYS[1] a session key, ARGV[1] what its record must hold at its last top-level
# ',"subject":' (pydantic writes the record's fields in order, ``data`` first, and a raw
# '"' after ',' is never inside a JSON string, so the last occurrence is the record's
# own field): ',"subject":"<subject>","auth_time":' for one subject, ',"subject":"' for
# any. Deletes the record and returns 1 when it matches; 0 (nothing changed) otherwise.
_END_SCRIPT = """\
local value = redis.pcall('GET', KEYS[1])
if type(value) ~= 'string' or not string.find(value, '^[1-9]%d* %x+|') then return 0 end
local at, from = nil, 1
while true do
  local found = string.find(value, ',"subject":', from, true)
  if not found then break end
  at, from = found, found + 1
end
if not at or string.sub(value, at, at + #ARGV[1] - 1) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
_END = Script.of(_END_SCRIPT)

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
_DROP = Script.of(_DROP_SCRIPT)

# Finding one member by its handle, on the server: KEYS[1] the set, ARGV[1] "<handle>:".
_FIND_SCRIPT = """\
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, #ARGV[1]) == ARGV[1] then
    return {member, redis.call('ZSCORE', KEYS[1], member)}
  end
end
return false
"""
_FIND = Script.of(_FIND_SCRIPT)

_HANDLE = re.compile(rf"[A-Za-z0-9_-]{{{HANDLE_LENGTH}}}")
_ANY_SUBJECT: Final = ',"subject":"'
_SUBJECT_JSON: Final = TypeAdapter(str)
_RECORD: Final = TypeAdapter(Session[Any])  # metadata only: the data is not validated
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_BATCH: Final = 1000  # index sets per round of end_all

_Entry = tuple[str, float]  # a member and its score when read


def epoch_ms(moment: datetime, *, ceil: bool = False) -> int:
    """``moment`` in Unix milliseconds, rounded down (or up with ``ceil``)."""
    ms = (moment - _EPOCH) / _MS
    return math.ceil(ms) if ceil else math.floor(ms)


def subject_fragment(subject: str) -> str:
    """What a record of ``subject`` holds at its top-level subject field (see _END_SCRIPT)."""
    return ',"subject":' + _SUBJECT_JSON.dump_json(subject).decode() + ',"auth_time":'


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


class RedisSubjectIndex:
    """The :class:`~typed_sessions.SubjectIndex` methods of ``RedisStore`` (a mixin)."""

    client: Redis | RedisCluster
    prefix: str
    max_per_subject: int | None
    _clock: Clock

    def _limit(self) -> AbstractContextManager[None]:
        raise NotImplementedError  # pragma: no cover - RedisStore provides it

    def index_key_for(self, subject: str) -> str:
        """Return the Redis key of ``subject``'s index: the prefix and a SHA-256 hex."""
        digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.prefix}subject:{{{digest}}}"

    def index_member(self, session_id: SessionId) -> str:
        """Return the member naming ``session_id`` in its subject's index."""
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{session_handle(session_id)}:{digest}"

    def _record_key(self, member: str) -> str:
        return self.prefix + member[HANDLE_LENGTH + 1 :]

    # -- the protocol -----------------------------------------------------------------

    async def list_subject(self, subject: str) -> list[SessionInfo]:
        """Return ``subject``'s live sessions, oldest first: two or three round trips.

        One to read the index (after dropping the entries whose time has passed), one
        pipelined ``GET`` of every indexed record, and one to drop the entries found
        dead, when there are any. Raises ``StoreUnavailableError`` as the other calls do.
        """
        live = await self._live(check_subject(subject))
        return [info for _, info in live]

    async def end_subject_session(self, subject: str, handle: str) -> bool:
        """End ``subject``'s session with ``handle``: three round trips (none for a
        malformed handle): find the entry, end the record (checked to be ``subject``'s,
        on the server), drop the entry."""
        key = self.index_key_for(check_subject(subject))
        if not _HANDLE.fullmatch(handle):
            return False
        found = await self._script(_FIND, (key,), handle + ":")
        if not found:
            return False
        entry = (_text(found[0]), float(found[1]))
        ended = await self._end(key, [entry], subject_fragment(subject))
        return ended == 1

    async def end_subject(self, subject: str, *, keep: SessionId | None = None) -> int:
        """End all of ``subject``'s sessions but ``keep``: three round trips, however
        many sessions (read the index; end every record, pipelined; drop the entries)."""
        key = self.index_key_for(check_subject(subject))
        kept = None if keep is None else self.index_member(keep)
        entries = [entry for entry in await self._entries(key) if entry[0] != kept]
        return await self._end(key, entries, subject_fragment(subject))

    async def end_all(self) -> int:
        """End every session that has a subject; sessions without one are kept.

        Cost: a ``SCAN`` of the whole keyspace for the index sets (on Redis Cluster, of
        every primary), then three round trips per 1,000 subjects. Rotating the signing
        keys instead ends every session at once, for nothing.
        """
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "subject:{*}"
        keys: list[str] = []
        ended = 0
        try:
            async for key in self.client.scan_iter(match=pattern, count=1000):
                keys.append(_text(key))
        except (RedisError, OSError, TimeoutError) as exc:
            _unavailable(exc)
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            replies = await self._pipeline([("ZRANGE", key, 0, -1, "WITHSCORES") for key in batch])
            for key, members in zip(batch, replies, strict=True):
                entries = [(_text(member), float(score)) for member, score in members]
                ended += await self._end(key, entries, _ANY_SUBJECT)
        return ended

    # -- steps --------------------------------------------------------------------------

    async def _entries(self, key: str) -> list[_Entry]:
        """Drop the entries of ``key`` whose time has passed; return the others."""
        now = epoch_ms(self._clock())
        replies = await self._pipeline(
            [("ZREMRANGEBYSCORE", key, "-inf", now), ("ZRANGE", key, 0, -1, "WITHSCORES")]
        )
        return [(_text(member), float(score)) for member, score in replies[1]]

    async def _live(self, subject: str) -> list[tuple[_Entry, SessionInfo]]:
        """``subject``'s live sessions, oldest first, with their entries; drop dead ones."""
        key = self.index_key_for(subject)
        entries = await self._entries(key)
        values = await self._pipeline([("GET", self._record_key(m)) for m, _ in entries])
        now = self._clock()
        live: list[tuple[_Entry, SessionInfo]] = []
        dead: list[_Entry] = []
        for entry, value in zip(entries, values, strict=True):
            record = _record(value)
            if record is None or record.subject != subject or now >= record.expires_at:
                dead.append(entry)
                continue
            handle = entry[0][:HANDLE_LENGTH]
            info = SessionInfo(
                handle,
                subject,
                record.created_at,
                record.last_active,
                record.expires_at,
                record.auth_time,
                record.device,
            )
            live.append((entry, info))
        await self._drop(key, dead)
        live.sort(key=lambda pair: pair[1].created_at)
        return live

    async def _end(self, key: str, entries: Sequence[_Entry], fragment: str) -> int:
        """End the records of ``entries`` (when they hold ``fragment``), then drop the
        entries: records first, so an interruption never leaves a live, unindexed one."""
        if not entries:
            return 0
        calls = [(self._record_key(m), fragment) for m, _ in entries]
        replies = await self._pipelined_scripts(_END, calls)
        await self._drop(key, list(entries))
        return sum(1 for reply in replies if reply == 1)

    async def _drop(self, key: str, entries: list[_Entry]) -> None:
        if entries:
            args = [part for member, score in entries for part in (member, repr(score))]
            await self._script(_DROP, (key,), *args)

    async def _enforce_cap(self, subject: str, saved: SessionId) -> None:
        """End ``subject``'s oldest live sessions beyond ``max_per_subject`` (not ``saved``)."""
        cap = self.max_per_subject
        if cap is None:
            return
        live = await self._live(subject)
        mine = self.index_member(saved)
        others = [entry for entry, _ in live if entry[0] != mine]
        excess = len(live) - cap
        if excess > 0:
            await self._end(self.index_key_for(subject), others[:excess], subject_fragment(subject))

    async def _save_indexed(
        self, session: Session[Any], save: Script, indexed: Script, value: bytes, control: str
    ) -> Any:
        """Save ``session`` (which has a subject) and keep its index entry; return the
        save script's reply. One round trip on one server; on Cluster two (three for a
        new record), ordered so that a live session is never missing from the index."""
        subject = session.subject
        assert subject is not None
        index_key = self.index_key_for(subject)
        member = self.index_member(session.id)
        key = self._record_key(member)
        now = self._clock()
        ended = now >= session.expires_at
        spec = f"{epoch_ms(session.expires_at, ceil=True)} {epoch_ms(now)} {int(ended)}"
        cap = self.max_per_subject
        if not isinstance(self.client, RedisCluster):
            args = (value, control, member, spec, str(cap or 0))
            reply = await self._script(indexed, (key, index_key), *args)
            over = reply == OVER_CAP
            reply = 0 if over else reply
        else:
            count = 0 if ended else await self._script(_INDEX, (index_key,), member, spec)
            reply = await self._script(save, (key,), value, control)
            if reply == 0 and (ended or session.version == 0):
                # Ended: its entry goes now. New: entered again, in case a list that ran
                # between the two steps found no record yet and dropped the entry.
                count = await self._script(_INDEX, (index_key,), member, spec)
            over = cap is not None and count > cap
        if reply == 0 and over and not ended:
            await self._enforce_cap(subject, session.id)
        return reply

    # -- round trips ---------------------------------------------------------------------

    async def _pipeline(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one pipeline (not a transaction): one round trip per node."""
        if not commands:
            return []
        try:
            with self._limit():
                pipe = self.client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError, TimeoutError) as exc:
            _unavailable(exc)
        for reply in replies:
            if isinstance(reply, BaseException):
                _unavailable(reply)
        return replies

    async def _script(self, script: Script, keys: tuple[str, ...], *args: str | bytes) -> Any:
        """Run ``script`` on ``keys``: one ``EVALSHA``, and one ``EVAL`` the first time
        on a server that has not cached it yet (which caches it)."""
        try:
            with self._limit():
                try:
                    return await self.client.evalsha(script.sha, len(keys), *keys, *args)
                except NoScriptError:
                    return await self.client.eval(script.text, len(keys), *keys, *args)
        except (RedisError, OSError, TimeoutError) as exc:
            _unavailable(exc)

    async def _pipelined_scripts(
        self, script: Script, calls: Sequence[tuple[str, str]]
    ) -> list[Any]:
        """Run ``script`` on each ``(key, argument)`` in one pipeline; a server without
        the script gets it once (``SCRIPT LOAD``) and the calls it refused again."""
        commands = [("EVALSHA", script.sha, 1, key, arg) for key, arg in calls]
        try:
            with self._limit():
                pipe = self.client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError, TimeoutError) as exc:
            _unavailable(exc)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            try:
                with self._limit():
                    await self.client.script_load(script.text)  # on Cluster: every primary
            except (RedisError, OSError, TimeoutError) as exc:
                _unavailable(exc)
            again = await self._pipeline([commands[i] for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, BaseException):
                _unavailable(reply)
        return replies


def _record(value: bytes | str | None) -> Session[Any] | None:
    """The record in a stored value, or ``None`` (absent, ended, or unreadable)."""
    if value is None:
        return None
    payload = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    header = _HEADER.match(payload, 0, _HEADER_MAX)
    if header is None:
        return None
    try:
        return _RECORD.validate_json(payload[header.end() :])
    except ValidationError:
        return None
