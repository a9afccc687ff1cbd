"""Per-call time limits for store calls: one timer per event loop, not one per call.

``asyncio.timeout`` arms a timer handle on every call and cancels it afterwards, which
costs about 3 us, twice per request for a store that reads and writes. :class:`Deadlines`
keeps the calls in flight in a dict instead, with one timer armed at the earliest
deadline; when it fires, it cancels the calls past theirs and re-arms itself for the
rest. A call that finishes in time costs a dict insertion and removal.

The outcome is the one ``asyncio.timeout`` gives: a call cancelled for its deadline
raises ``TimeoutError``; a cancellation from anywhere else (the request's task being
cancelled) propagates as ``CancelledError``, even when it coincides with the deadline.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Final

__all__ = ["CallLimit", "Deadlines"]

_NEVER: Final = float("inf")
_OUTSIDE_A_TASK: Final = "a time-limited store call must run inside an asyncio task"


class Deadlines:
    """The bounded calls in flight on one event loop, and the timer that ends late ones.

    Use ``with deadlines.bound(seconds): await call()`` inside a task on ``loop``. The
    loop and the timer are held weakly: a store keeping its ``Deadlines`` does not keep a
    closed loop alive.
    """

    __slots__ = ("__weakref__", "_calls", "_handle", "_when", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Track calls on ``loop``; no timer is armed until a call is in flight."""
        self.loop: weakref.ref[asyncio.AbstractEventLoop] = weakref.ref(loop)
        self._calls: dict[_Bound, None] = {}
        self._handle: weakref.ref[asyncio.TimerHandle] | None = None
        self._when = _NEVER

    def bound(self, seconds: float) -> _Bound:
        """A context manager that limits its block to ``seconds`` (raises TimeoutError).

        Raises:
            RuntimeError: not called from a task running on this loop.
        """
        loop = self.loop()
        task = asyncio.current_task(loop) if loop is not None else None
        if loop is None or task is None:
            raise RuntimeError(_OUTSIDE_A_TASK)
        return _Bound(self, task, loop.time() + seconds)

    def enter(self, call: _Bound) -> None:
        """Track ``call`` until :meth:`leave`; arm the timer if it ends first."""
        self._calls[call] = None
        if call.deadline < self._when:  # only when no timer is armed, or times vary
            self._arm(call.deadline)

    def leave(self, call: _Bound) -> None:
        """Stop tracking ``call``, which finished before its deadline."""
        del self._calls[call]

    def _arm(self, when: float) -> None:
        armed = None if self._handle is None else self._handle()
        if armed is not None:
            armed.cancel()
        self._when = when
        self._handle = weakref.ref(asyncio.get_running_loop().call_at(when, self._expire))

    def _expire(self) -> None:
        """End the calls past their deadline; re-arm for the earliest of the others."""
        self._handle = None
        self._when = _NEVER
        now = asyncio.get_running_loop().time()
        calls = self._calls
        late = [call for call in calls if call.deadline <= now]
        for call in late:
            del calls[call]
            call.expired = True
            call.task.cancel()
        if calls:
            self._arm(min(call.deadline for call in calls))


class _Bound:
    """One time-limited block: registered on entry, removed on exit."""

    __slots__ = ("cancelling", "deadline", "deadlines", "expired", "task")

    def __init__(self, deadlines: Deadlines, task: asyncio.Task[object], deadline: float) -> None:
        self.deadlines: Deadlines = deadlines
        self.task: asyncio.Task[object] = task
        self.deadline: float = deadline
        self.expired: bool = False
        self.cancelling: int = 0

    def __enter__(self) -> None:
        self.cancelling = self.task.cancelling()
        self.deadlines.enter(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.expired:
            self.deadlines.leave(self)
            if exc_type is None and self.task.cancelling() > self.cancelling:
                raise asyncio.CancelledError(_SWALLOWED)
            return
        # Ours was the cancellation; as asyncio.timeout does, turn it into TimeoutError
        # unless someone else asked to cancel the task meanwhile.
        others = self.task.uncancel() > self.cancelling
        if exc_type is asyncio.CancelledError and not others:
            raise TimeoutError from exc
        if exc_type is None and others:
            raise asyncio.CancelledError(_SWALLOWED)


class CallLimit:
    """A per-call time limit usable from any event loop: one :class:`Deadlines` per loop.

    ``with limit(): await call()`` bounds the block by ``seconds`` (``None``: unbounded),
    raising ``TimeoutError`` as ``asyncio.timeout`` would.
    """

    __slots__ = ("_last", "_loops", "on_loop_gone", "seconds")

    def __init__(
        self, seconds: float | None, on_loop_gone: Callable[[], None] | None = None
    ) -> None:
        """Bound each call by ``seconds``; ``None`` leaves calls unbounded.
        ``on_loop_gone`` is called (before the call) when a call comes on another event
        loop than the last one, and that one is closed: nothing can be in flight there."""
        self.seconds: float | None = seconds
        self.on_loop_gone: Callable[[], None] | None = on_loop_gone
        self._last: Deadlines | None = None  # the last loop's, then one per loop
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self) -> AbstractContextManager[None]:
        """A context manager bounding one call (raises ``RuntimeError`` outside a task)."""
        loop = asyncio.get_running_loop()
        deadlines = self._last
        if deadlines is None or deadlines.loop() is not loop:
            deadlines = self._switch(loop)
        seconds = self.seconds
        if seconds is None:
            return _Unbounded()
        # Deadlines.bound, inlined: this runs on every store call.
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError(_OUTSIDE_A_TASK)
        return _Bound(deadlines, task, loop.time() + seconds)

    def _switch(self, loop: asyncio.AbstractEventLoop) -> Deadlines:
        """The :class:`Deadlines` of ``loop``, a loop other than the last call's."""
        last = None if self._last is None else self._last.loop()
        gone = self._last is not None and (last is None or last.is_closed())
        if gone and self.on_loop_gone is not None:
            self.on_loop_gone()
        deadlines = self._loops.get(loop)
        if deadlines is None:
            deadlines = self._loops[loop] = Deadlines(loop)
        self._last = deadlines
        return deadlines


class _Unbounded:
    """A block without a time limit, that still ends cancelled when its task was
    cancelled and the call swallowed it (see :data:`_SWALLOWED`)."""

    __slots__ = ("cancelling", "task")

    def __enter__(self) -> None:
        self.task = asyncio.current_task()
        self.cancelling = 0 if self.task is None else self.task.cancelling()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None and self.task is not None and self.task.cancelling() > self.cancelling:
            raise asyncio.CancelledError(_SWALLOWED)


_SWALLOWED: Final = "cancelled during a store call, which returned anyway"
"""A cancellation the call itself swallowed: redis-py sends its connection's set-up
commands under ``asyncio.wait_for``, which on Python 3.11 may drop a cancellation that
comes as the inner call finishes. The task is cancelled all the same."""
