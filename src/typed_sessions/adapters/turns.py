"""Taking turns, per session, inside one worker process.

The middleware uses :class:`Turns` twice: always, so that the commits of one session in
one worker never race each other (each sees the one before it, so a lost race costs one
reload instead of a storm of retries); and, with ``take_turns=True``, from a request's
load of its session to its commit, so that requests of one session in one worker run
their session work one after the other.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import KeysView
from typing import Generic, TypeVar

__all__ = ["Turn", "Turns"]

K = TypeVar("K")


class Turns(Generic[K]):
    """First come, first served turns by key; a key with no holder costs a dict entry.

    Bound to the event loop of its first waiter (one worker, one loop).
    """

    __slots__ = ("_queues", "held")

    def __init__(self) -> None:
        # A turn's waiters; a turn taken with nobody waiting holds the empty tuple (no
        # deque made for the common case).
        self._queues: dict[K, deque[asyncio.Future[None]] | tuple[()]] = {}
        self.held: KeysView[K] = self._queues.keys()
        """The keys whose turn is taken, a live view (``key in turns.held``: no call)."""

    def take_free(self, key: K) -> bool:
        """Take the turn of ``key`` if nobody holds it, without waiting: ``False`` if
        somebody does. The caller must :meth:`give_back` every turn it took."""
        queues = self._queues
        if key in queues:
            return False
        queues[key] = ()
        return True

    async def take(self, key: K, wait: float | None = None) -> bool:
        """Wait for the turn of ``key``; ``False`` when ``wait`` seconds passed first.

        The caller must :meth:`give_back` every turn it took.
        """
        if self.take_free(key):
            return True
        waiters = self._queues[key]
        if type(waiters) is not deque:  # the first to wait for this turn
            waiters = self._queues[key] = deque[asyncio.Future[None]]()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(turn)
        try:
            async with asyncio.timeout(wait):
                await turn
        except TimeoutError:
            self._forgo(key, turn)
            return False
        except BaseException:
            self._forgo(key, turn)
            raise
        return True

    def give_back(self, key: K) -> bool:
        """End the turn of ``key``: the longest waiter gets it (``True``; it resumes once
        the caller awaits), or nobody holds it (``False``)."""
        waiters = self._queues.get(key)
        if waiters is None:
            return False
        while type(waiters) is deque and waiters:
            turn = waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return True
        del self._queues[key]
        return False

    def _forgo(self, key: K, turn: asyncio.Future[None]) -> None:
        """A waiter left: pass its turn on if it was handed one meanwhile."""
        if turn.done() and not turn.cancelled():
            self.give_back(key)
        else:
            turn.cancel()


class Turn(Generic[K]):
    """One request's turn in :class:`Turns`: taken at most once, given back once."""

    __slots__ = ("_over", "_taking", "_turns", "key")

    def __init__(self, turns: Turns[K]) -> None:
        self._turns = turns
        self.key: K | None = None
        self._taking: asyncio.Future[bool | None] | None = None
        self._over = False  # the request ended: a turn that comes now goes straight back

    async def take(self, key: K, wait: float | None) -> bool:
        """Wait for the turn of ``key`` (see :meth:`Turns.take`); ``False`` if it did
        not come within ``wait`` seconds. A take while another of this request waits (two
        ``load()`` calls at once) shares its outcome, rather than queue behind it; if
        that one was cancelled, it waits for the turn itself. ``False`` too once the
        request ended (:meth:`end` with ``last``): a task it left waiting never keeps the
        turn."""
        while self.key is None and self._taking is not None:
            took = await asyncio.shield(self._taking)
            if took is not None:  # None: the other take was cancelled
                return took
        if self.key is not None:
            return True
        if self.over():
            return False
        self._taking = taking = asyncio.get_running_loop().create_future()
        took = None
        try:
            took = await self._turns.take(key, wait)
            if took and self.over():  # came after the request ended: the next one's
                self._turns.give_back(key)
                took = False
            elif took:
                self.key = key
            return took
        finally:
            self._taking = None
            taking.set_result(took)

    def over(self) -> bool:
        """Whether the request ended (:meth:`end` with ``last``): it takes no turn now."""
        return self._over

    def end(self, *, last: bool = False) -> None:
        """Give the turn back, if it was taken; ``last``: the request ended, and no turn
        is taken for it any more."""
        if last:
            self._over = True
        key = self.key
        if key is not None:
            self.key = None
            self._turns.give_back(key)
