"""adapters/turns.py: first come, first served turns per key."""

from __future__ import annotations

import asyncio

import pytest

from typed_sessions.adapters.turns import Turn, Turns

pytestmark = pytest.mark.anyio


async def test_turns_are_taken_in_order_and_the_key_is_forgotten_after() -> None:
    turns: Turns[str] = Turns()
    order: list[int] = []

    async def worker(n: int) -> None:
        assert await turns.take("s")
        order.append(n)
        await asyncio.sleep(0)
        order.append(n)
        turns.give_back("s")

    await asyncio.gather(*(worker(n) for n in range(5)))
    assert order == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # never interleaved, first come first
    assert "s" not in turns.held


async def test_other_keys_never_wait() -> None:
    turns: Turns[str] = Turns()
    assert await turns.take("a")
    assert await asyncio.wait_for(turns.take("b"), 0.1)
    turns.give_back("a")
    turns.give_back("b")


async def test_a_wait_that_runs_out_leaves_the_queue_intact() -> None:
    turns: Turns[str] = Turns()
    assert await turns.take("s")
    assert not await turns.take("s", 0.01)  # gave up
    later = asyncio.ensure_future(turns.take("s", 1))
    await asyncio.sleep(0)
    turns.give_back("s")  # skips the one that gave up, hands over to `later`
    assert await later
    turns.give_back("s")
    assert "s" not in turns.held


async def test_a_cancelled_waiter_hands_on_a_turn_it_was_given() -> None:
    turns: Turns[str] = Turns()
    assert await turns.take("s")
    waiter = asyncio.ensure_future(turns.take("s"))
    await asyncio.sleep(0)
    turns.give_back("s")  # handed to the waiter...
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert "s" not in turns.held  # passed on (to nobody): not held for ever


async def test_a_cancelled_first_take_leaves_the_shared_second_to_wait_itself() -> None:
    """Two takes of one request's turn at once (two load() calls) while another request
    holds it; the first is cancelled. The second shared the first's outcome and was
    refused at once; it now waits for the turn itself (found by a review)."""
    turns: Turns[str] = Turns()
    assert turns.take_free("s")  # another request holds the turn
    turn: Turn[str] = Turn(turns)
    first = asyncio.create_task(turn.take("s", 5.0))
    second = asyncio.create_task(turn.take("s", 5.0))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.sleep(0.01)
    turns.give_back("s")  # the other request is done
    assert await asyncio.wait_for(second, 1.0) is True
    assert turn.key == "s"
    turn.end()
    assert "s" not in turns.held
