"""RedisStore's subject index: a subject's sessions, found without keyspace notifications.

Layout
------
One sorted set per subject, ``prefix + "subject:{" + sha256(subject) + "}"`` (the hash
tag keeps every key of one subject in one slot). Its members are
``"<handle>:<sha256(session ID)>"`` (the public handle, and the hex that names the
session's key), scored by the session's ``expires_at`` in Unix milliseconds. A save of a
session with a subject that adds its member or moves its deadline raises the score
(``ZADD GT``), drops the members whose time has passed (``ZREMRANGEBYSCORE``), and sets
the set's own TTL to its latest member's, so a subject's index never outlives its
sessions; a save that moves no deadline only checks the member's score (``ZSCORE``).
Listing and ending drop the members whose session they find gone, ended, or saved for
another subject.

Whose session a record is, is checked on the record itself, never trusted from the
index: ending runs a script on the session's key that ends it only when the record's
top-level ``"subject"`` is the one asked for. So an index entry left stale (the same ID
saved for another subject) can never end another subject's session. The ended record
leaves the tombstone an ending save leaves (see :mod:`.redis_save`), so that a save the
client library sends again after a lost reply is told it is done instead of writing
the session back.

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
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError, ResponseError

from typed_sessions.core.clock import Clock
from typed_sessions.core.ids import SessionId
from typed_sessions.core.session import Session, record_fault
from typed_sessions.core.subjects import (
    HANDLE_LENGTH,
    SessionInfo,
    beyond_cap,
    check_subject,
    checked_subject,
    is_handle,
    session_handle,
)
from typed_sessions.stores.redis_calls import RedisCalls, Reply
from typed_sessions.stores.redis_format import (
    as_bytes,
    is_wrong_type,
    unavailable,
    unexpected,
    unpack,
)
from typed_sessions.stores.redis_save import new_write_id
from typed_sessions.stores.redis_scripts import DROP, END, FIND, INDEX, OVER_CAP, Script
from typed_sessions.stores.subjects import ENDING_PASSES, kept_rotating

__all__ = ["RedisSubjectIndex"]

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


class RedisSubjectIndex(RedisCalls):
    """The :class:`~typed_sessions.SubjectIndex` methods of ``RedisStore`` (a mixin)."""

    prefix: str
    max_per_subject: int | None
    _clock: Clock
    _cluster: bool  # the client is a RedisCluster (an isinstance check costs microseconds)
    _index_keys: dict[str, str]  # subject -> index key, for saves

    def index_key_for(self, subject: str) -> str:
        """Return the Redis key of ``subject``'s index: the prefix and a SHA-256 hex."""
        digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.prefix}subject:{{{digest}}}"

    def _remember_index_key(self, subject: str) -> str:
        """``index_key_for(subject)``, kept for the next saves (up to 4,096 subjects)."""
        if len(self._index_keys) >= 4096:
            self._index_keys.clear()
        key = self._index_keys[subject] = self.index_key_for(subject)
        return key

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
        if not is_handle(handle):
            return False
        found = await self._script(FIND, (key,), handle + ":")
        if not found:
            return False
        if not isinstance(found, list) or len(found) != 2:
            raise unexpected(found, "the find script")
        entry = (_text(found[0]), _number(found[1]))
        if entry[1] <= epoch_ms(self._clock()):  # its time has passed: no live session
            return False
        ended = await self._end({key: [entry]}, subject_fragment(subject))
        return ended == 1

    async def end_subject(self, subject: str, *, keep: SessionId | None = None) -> int:
        """End all of ``subject``'s sessions but ``keep``: three round trips per pass,
        however many sessions (read the index; end every record, pipelined; drop the
        entries), and passes until one finds nothing to end: a rotation that finished
        between a pass's read and its ending left a new record that the next pass ends.
        """
        key = self.index_key_for(check_subject(subject))
        kept = None if keep is None else self.index_member(keep)
        ended = 0
        for _ in range(ENDING_PASSES):  # (a save indexes its record as it writes it)
            entries = [entry for entry in await self._entries(key) if entry[0] != kept]
            if not entries:
                return ended
            ended += await self._end({key: entries}, subject_fragment(subject))
        raise kept_rotating("the subject's sessions")

    async def end_all(self) -> int:
        """End every session that has a subject; sessions without one are kept.

        Cost: a ``SCAN`` of the whole keyspace for the index sets (on Redis Cluster, of
        every primary), then three round trips per 1,000 subjects; then all that again
        when the first pass found any session, to end what rotated meanwhile (see
        :meth:`end_subject`). Rotating the signing keys instead ends every session at
        once, for nothing.
        """
        ended = 0
        for _ in range(2):  # not more: each pass scans the whole keyspace
            found, count = await self._end_all_once()
            ended += count
            if not found:
                break
        return ended

    async def _end_all_once(self) -> tuple[bool, int]:
        """One pass of :meth:`end_all`: whether it found any entry, and how many ended."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "subject:{*}"
        keys = [_text(key) for key in await self._scan(pattern)]
        found, ended = False, 0
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            now = epoch_ms(self._clock())  # (entries whose time has passed end nothing)
            replies = await self._send(
                [("ZRANGEBYSCORE", key, f"({now}", "+inf", "WITHSCORES") for key in batch]
            )
            entries: dict[str, list[_Entry]] = {}
            for index_key, members in zip(batch, replies, strict=True):
                if isinstance(members, ResponseError) and is_wrong_type(members):
                    continue  # not an index: another app's key under the prefix
                if isinstance(members, RedisError):
                    unavailable(members)
                entries[index_key] = _scored(members)
            found = found or any(entries.values())
            ended += await self._end(entries, _ANY_SUBJECT)
        return found, ended

    # -- steps --------------------------------------------------------------------------

    async def _entries(self, key: str) -> list[_Entry]:
        """Drop the entries of ``key`` whose time has passed; return the others."""
        now = epoch_ms(self._clock())
        replies = await self._pipeline(
            [("ZREMRANGEBYSCORE", key, "-inf", now), ("ZRANGE", key, 0, -1, "WITHSCORES")]
        )
        return _scored(replies[1])

    async def _live(self, subject: str) -> list[tuple[_Entry, SessionInfo]]:
        """``subject``'s live sessions, oldest first, with their entries; drop dead ones."""
        key = self.index_key_for(subject)
        entries = await self._entries(key)
        values: list[Reply] = []
        if entries:
            for value in await self._send([("GET", self._record_key(m)) for m, _ in entries]):
                if isinstance(value, ResponseError) and is_wrong_type(value):
                    value = None  # not a record (another program's key): a dead entry
                elif isinstance(value, RedisError):
                    unavailable(value)
                values.append(value)
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
        await self._drop({key: dead})
        live.sort(key=lambda pair: pair[1].created_at)
        return live

    async def _end(self, entries: dict[str, list[_Entry]], fragment: str) -> int:
        """End the records of ``entries`` (index key -> its entries) whose record holds
        ``fragment``, then drop the entries: the records first, so an interruption never
        leaves a live session unindexed. Two round trips, however many entries."""
        calls = [
            (self._record_key(m), fragment, new_write_id())
            for found in entries.values()
            for m, _ in found
        ]
        if not calls:
            return 0
        replies = await self._pipelined_scripts(END, calls)
        await self._drop(entries)
        return sum(1 for reply in replies if reply == 1)

    async def _drop(self, entries: dict[str, list[_Entry]]) -> None:
        """Drop ``entries`` (index key -> entries) unless re-saved since: one round trip."""
        calls = [
            (key, *(part for member, score in found for part in (member, repr(score))))
            for key, found in entries.items()
            if found
        ]
        if calls:
            await self._pipelined_scripts(DROP, calls)

    async def _enforce_cap(self, subject: str, saved: Session[Any]) -> None:
        """End ``subject``'s sessions beyond ``max_per_subject`` (see ``beyond_cap``)."""
        cap = self.max_per_subject
        if cap is None:
            return
        live = await self._live(subject)
        mine = self.index_member(saved.id)
        others = [
            (entry, info.created_at, info.auth_time) for entry, info in live if entry[0] != mine
        ]
        doomed = beyond_cap(others, saved.created_at, saved.auth_time, cap)
        if doomed:
            await self._end({self.index_key_for(subject): doomed}, subject_fragment(subject))

    async def _save_indexed(
        self,
        session: Session[Any],
        now: datetime,
        key: str,
        scripts: tuple[Script, Script],
        value: bytes,
        control: str,
    ) -> Reply:
        """Save ``session`` (which has a subject) and keep its index entry; return the
        save script's reply. One round trip on one server; on Cluster two (three for a
        new record), ordered so that a live session is never missing from the index."""
        assert session.subject is not None  # the caller checked
        subject = checked_subject(session.subject)  # before any I/O
        save, indexed = scripts
        index_key = self._index_keys.get(subject) or self._remember_index_key(subject)
        member = f"{session_handle(session.id)}:{key[len(self.prefix) :]}"
        ended = now >= session.expires_at  # as the save script decides (ttl 0)
        deadline = math.ceil(session.expires_at.timestamp() * 1000)
        at = f" {math.floor(now.timestamp() * 1000)} {int(ended)}"
        spec = f"{deadline}{at}"
        cap = self.max_per_subject
        if not self._cluster:
            args = (value, control, member, spec, str(cap or 0))
            reply = await self._script(indexed, (key, index_key), *args)
            over = reply == OVER_CAP
            reply = 0 if over else reply
        else:
            # A new record's first entry is a millisecond short: the second step raises
            # it, so that a list which found no record yet cannot drop it after that.
            first = spec if session.version else f"{deadline - 1}{at}"
            capped = "0" if cap is None else "1"
            count = (
                0
                if ended
                else _number(await self._script(INDEX, (index_key,), member, first, capped))
            )
            reply = await self._script(save, (key,), value, control)
            if reply == 0 and (ended or session.version == 0):
                # Ended: its entry goes now. New: entered again, in case a list that ran
                # between the two steps found no record yet and dropped the entry.
                again = _number(await self._script(INDEX, (index_key,), member, spec, capped))
                count = max(count, again)
            over = cap is not None and count > cap
        if reply == 0 and over and not ended:
            await self._enforce_cap(subject, session)
        return reply


def _record(value: Reply) -> Session[Any] | None:
    """The record in a stored value, or ``None`` (absent, ended, or unreadable)."""
    if not isinstance(value, bytes | str):
        return None
    unpacked = unpack(as_bytes(value))
    if unpacked is None:
        return None
    try:
        record = _RECORD.validate_json(unpacked[1])
    except ValidationError:
        return None
    return None if record_fault(record) else record


def _scored(reply: Reply | Sequence[Reply]) -> list[_Entry]:
    """A ``ZRANGE ... WITHSCORES`` reply as (member, score) pairs: redis-py pairs them
    (5.1 and later), or gives them flat, member and score in turn (5.0)."""
    if not isinstance(reply, list | tuple):
        raise unexpected(reply, "ZRANGE")
    if reply and not isinstance(reply[0], list | tuple):
        flat = zip(reply[::2], reply[1::2], strict=True)
        return [(_text(member), _number(score)) for member, score in flat]
    entries: list[_Entry] = []
    for pair in reply:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise unexpected(reply, "ZRANGE")
        entries.append((_text(pair[0]), _number(pair[1])))
    return entries


def _text(value: Reply) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return value
    raise unexpected(value, "a member")


def _number(value: Reply) -> float:
    if isinstance(value, bytes | str | int | float):
        return float(value)
    raise unexpected(value, "a score")
