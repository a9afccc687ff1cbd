"""Deadlines: the store's per-call time limit behaves as ``asyncio.timeout`` does.

Late calls raise ``TimeoutError``; calls that finish in time are never cancelled later,
however long the task lives on; any other cancellation stays a ``CancelledError``; the one
timer is re-armed for calls that start while it waits, on every loop the store meets.
"""

# pyright: reportPrivateUsage=false
# (tests of the module's internals, by name)

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from typed_sessions.stores.deadlines import CallLimit, Deadlines

pytestmark = pytest.mark.anyio
SHORT = 0.05


def deadlines() -> Deadlines:
    return Deadlines(asyncio.get_running_loop())


async def test_a_late_call_raises_timeout_error_near_its_deadline() -> None:
    limits = deadlines()
    start = time.monotonic()
    with pytest.raises(TimeoutError), limits.bound(SHORT):
        await asyncio.sleep(10)
    assert SHORT <= time.monotonic() - start < SHORT + 1.0
    assert not limits._calls  # nothing left behind
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_call_in_time_returns_and_is_never_cancelled_afterwards() -> None:
    limits = deadlines()
    with limits.bound(SHORT):
        await asyncio.sleep(0)
    await asyncio.sleep(SHORT * 3)  # past the deadline the call had: no stray cancel
    assert not limits._calls
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_calls_started_while_the_timer_waits_still_time_out() -> None:
    """The timer armed for the first call re-arms for a later call's deadline."""
    limits = deadlines()
    with limits.bound(SHORT):
        await asyncio.sleep(0)
    await asyncio.sleep(SHORT / 2)
    start = time.monotonic()
    with pytest.raises(TimeoutError), limits.bound(SHORT):
        await asyncio.sleep(10)
    assert time.monotonic() - start >= SHORT


async def test_only_the_late_ones_of_concurrent_calls_time_out() -> None:
    limits = deadlines()

    async def call(seconds: float) -> str:
        with limits.bound(SHORT * 2):
            await asyncio.sleep(seconds)
        return "done"

    results = await asyncio.gather(
        *(call(SHORT / 10 if n % 2 else 10) for n in range(10)), return_exceptions=True
    )
    assert [type(r) for r in results] == [TimeoutError, str] * 5
    assert not limits._calls


async def test_a_shorter_call_in_the_same_task_moves_the_timer_earlier() -> None:
    limits = deadlines()
    with limits.bound(10):
        start = time.monotonic()
        with pytest.raises(TimeoutError), limits.bound(SHORT):
            await asyncio.sleep(10)
        assert time.monotonic() - start < 5
        await asyncio.sleep(0)  # the outer block is still alive and unharmed
    assert not limits._calls


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    limits = deadlines()

    async def call() -> None:
        with limits.bound(10):
            await asyncio.sleep(10)

    task = asyncio.create_task(call())
    await asyncio.sleep(SHORT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not limits._calls


async def test_an_outside_cancellation_at_the_deadline_is_not_swallowed() -> None:
    """Cancelled for the deadline and from outside at once: CancelledError wins."""
    limits = deadlines()
    seen: list[type[BaseException]] = []

    async def call() -> None:
        try:
            with limits.bound(SHORT):
                await asyncio.sleep(10)
        except BaseException as exc:
            seen.append(type(exc))
            raise

    task = asyncio.create_task(call())
    await asyncio.sleep(0)
    limits._calls.copy().popitem()[0].deadline = 0  # already late when the timer fires
    limits._expire()  # the deadline cancels the task ...
    task.cancel()  # ... and so does its owner, before the task runs again
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [asyncio.CancelledError]


async def _swallowing() -> str:
    """A call that swallows its cancellation, as redis-py's ``wait_for`` can on 3.11."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        return "returned anyway"
    return "in time"


@pytest.mark.parametrize("seconds", [10.0, None])
async def test_a_cancellation_the_call_swallowed_still_cancels_the_task(
    seconds: float | None,
) -> None:
    """The store's call returned normally, but its task was cancelled meanwhile: the
    task ends cancelled all the same, bounded or not (found by an audit)."""
    limit = CallLimit(seconds)

    async def call() -> str:
        with limit():
            return await _swallowing()

    task = asyncio.create_task(call())
    await asyncio.sleep(SHORT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_deadline_the_call_swallowed_returns_what_it_returned() -> None:
    """As with ``asyncio.timeout``: the call ended in its own way; nothing is raised."""
    limit = CallLimit(SHORT)

    async def call() -> str:
        with limit():
            return await _swallowing()

    assert await asyncio.create_task(call()) == "returned anyway"


async def test_outside_a_task_is_a_clear_error() -> None:
    limits = deadlines()
    loop = asyncio.get_running_loop()
    failures: list[BaseException] = []

    def callback() -> None:
        try:
            limits.bound(1)
        except RuntimeError as exc:
            failures.append(exc)

    loop.call_soon(callback)
    await asyncio.sleep(0.01)
    assert len(failures) == 1
    assert "asyncio task" in str(failures[0])


def test_a_store_keeps_one_deadlines_per_loop_and_no_closed_loop() -> None:
    """Loops taking turns reuse their own Deadlines; a finished loop is not kept alive."""
    from typing import Any

    from redis.asyncio import Redis

    from typed_sessions.stores.redis import RedisStore

    store: RedisStore[dict[str, Any]] = RedisStore(Redis(), dict[str, Any], timeout=1)
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    seen: list[Deadlines] = []

    async def limited() -> None:
        with store._limit():
            await asyncio.sleep(0)
        assert store._limit._last is not None
        seen.append(store._limit._last)

    for _ in range(5):
        first.run_until_complete(limited())
        second.run_until_complete(limited())
    assert len({id(deadlines) for deadlines in seen}) == 2
    gone = weakref.ref(first)
    first.close()
    second.close()
    del first, second
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize("seconds", [1.0, None])
def test_on_loop_gone_runs_only_when_the_last_calls_loop_is_closed(seconds: float | None) -> None:
    """A store forgets its client's connections there (see ``RedisCalls``): never while
    the last loop still runs (its calls may be in flight), once per closed one."""
    gone: list[int] = []
    limit = CallLimit(seconds, lambda: gone.append(1))

    async def limited() -> None:
        with limit():
            await asyncio.sleep(0)

    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    for _ in range(3):  # both open, taking turns
        first.run_until_complete(limited())
        second.run_until_complete(limited())
    assert gone == []
    second.close()
    first.run_until_complete(limited())
    assert gone == [1]
    first.run_until_complete(limited())  # the same loop again
    assert gone == [1]
    first.close()
    asyncio.run(limited())
    assert gone == [1, 1]
