"""The memory store's purge of expired records: a little in each call, shard by shard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from typed_sessions.stores.memory_records import EXPIRES, TAIL, record_subject
from typed_sessions.stores.memory_table import Key, Shard, Table

__all__ = ["PURGE_BUDGET", "SWEEPING", "Purge"]

PURGE_BUDGET: Final = 256
"""The most records a call looks at while purging expired ones."""

SWEEPING: Final = -(1 << 80)
"""The store's next sweep time while one is under way: before any time, so that one
comparison tells a call whether to purge (a sweep due or under way)."""

_EXPIRES: Final = EXPIRES.unpack_from


class Purge:
    """Where the purge under way is: the next shard, the shard it is in, and the keys of
    that shard it has yet to look at."""

    __slots__ = ("next_shard", "pending", "shard")

    def __init__(self) -> None:
        """No purge under way."""
        self.next_shard: int | None = None
        self.shard: Shard = {}
        self.pending: list[Key] = []

    def step(self, table: Table, now: int, drop: Callable[[Shard, Key, bytes], None]) -> bool:
        """Go on with the purge (or start one), looking at :data:`PURGE_BUDGET` records at
        most (moving to the next shard counts as one); ``drop`` removes a record with a
        subject. Return whether the purge is over."""
        if self.next_shard is None:
            self.next_shard = 0
        shards = table.shards
        pending = self.pending
        budget = PURGE_BUDGET
        while budget > 0:
            if not pending:
                if self.next_shard >= len(shards):
                    self.next_shard = None
                    return True
                self.shard = shards[self.next_shard]
                self.next_shard += 1
                pending = self.pending = list(self.shard)
                budget -= 1
                continue
            batch = pending[-budget:]
            del pending[-budget:]
            budget -= len(batch)
            _purge(table, self.shard, batch, now, drop)
        return False


def _purge(
    table: Table,
    shard: Shard,
    keys: list[Key],
    now: int,
    drop: Callable[[Shard, Key, bytes], None],
) -> None:
    expires = _EXPIRES
    for key in keys:
        record = shard.get(key)
        if record is None or now < expires(record, TAIL)[0]:
            continue
        if record_subject(record) is None:
            del shard[key]
            table.size -= 1
        else:
            drop(shard, key, record)
