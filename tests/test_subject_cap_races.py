"""A subject's cap under sign-ins at once (found by an audit): every sign-in answered with
a token ends only sessions signed in before it, never a later one, so the newest stays."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from typed_sessions import (
    Err,
    Expiry,
    MemoryStore,
    Ok,
    Session,
    SessionNotFound,
    make_header_dependency,
    new_session,
    session_handle,
    utc_now,
)
from typed_sessions.stores.operations import move_session
from typed_sessions.stores.sql_subjects import SqlSubjects
from typed_sessions.stores.subjects import subject_index

from .conftest import SECRET, FakeClock
from .stores import HARNESSES

pytestmark = pytest.mark.anyio


def allow(session: Session[Any]) -> bool:
    return True


@pytest.mark.parametrize("kind", ["sqlite-file", "postgresql", "mariadb"])
async def test_two_sign_ins_whose_cap_checks_see_each_other_keep_the_later(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_per_subject=1, two devices sign in at once, and each cap check runs after
    both INSERTs (two statements apart: a real window). Each check ended the other, and
    the user had no session left; now the later sign-in's check ends the earlier one."""
    async with HARNESSES[kind](max_per_subject=1) as harness:
        clock = FakeClock(harness.now())
        current = make_header_dependency(harness.store, allow, keys=SECRET, clock=clock)
        enforce = SqlSubjects.enforce_cap
        both_inserted = asyncio.Barrier(2)

        async def enforce_after_both_inserts(self: SqlSubjects, saved: Any, now: int) -> None:
            await both_inserted.wait()
            await enforce(self, saved, now)

        monkeypatch.setattr(SqlSubjects, "enforce_cap", enforce_after_both_inserts)
        first = asyncio.create_task(current.issue({"device": "phone"}, subject="ada"))
        await asyncio.sleep(0)
        clock.advance(timedelta(seconds=1))  # the laptop signs in a second later
        second = asyncio.create_task(current.issue({"device": "laptop"}, subject="ada"))
        phone, laptop = await first, await second
        assert await harness.store.load(laptop.session.id) is not None
        assert await harness.store.load(phone.session.id) is None


@pytest.mark.parametrize(("cap", "devices"), [(1, 3), (2, 5)])
@pytest.mark.parametrize("kind", ["redis", "sqlite-file", "postgresql", "mariadb"])
async def test_sign_ins_at_once_never_leave_the_user_without_the_newest(
    kind: str, cap: int, devices: int
) -> None:
    """Several sign-ins at once, on the real clock, no fault injected: on Redis none of
    three survived a cap of one, every time. The latest sign-in now always survives
    (the subject may stay over its cap when a check ran before another's record was
    there)."""
    async with HARNESSES[kind](max_per_subject=cap) as harness:
        current = make_header_dependency(harness.store, allow, keys=SECRET)
        issued = await asyncio.gather(
            *[current.issue({"device": n}, subject="ada") for n in range(devices)]
        )
        alive = [await harness.store.load(i.session.id) is not None for i in issued]
        latest = max(issued, key=lambda i: (i.session.auth_time, i.session.created_at))
        assert await harness.store.load(latest.session.id) is not None, alive
        assert 1 <= alive.count(True) <= devices


async def test_a_session_saved_without_auth_time_still_enforces_the_cap() -> None:
    """A subject's session saved without an auth_time (it is optional) goes by the starts
    alone, as before: found by a review, such a save ended no session signed in."""
    clock = FakeClock(utc_now())
    store = MemoryStore(dict[str, Any], max_per_subject=1, clock=clock)
    first: Session[dict[str, Any]] = new_session(
        {}, Expiry(), now=clock(), subject="ada", auth_time=clock()
    )
    assert isinstance(await store.save(first), Ok)
    clock.advance(timedelta(minutes=1))
    second = await store.save(new_session({}, Expiry(), now=clock(), subject="ada"))
    assert isinstance(second, Ok)
    assert [info.handle for info in await store.list_subject("ada")] == [
        session_handle(second.value.id)
    ]


@pytest.mark.parametrize("kind", ["memory", "redis", "sqlite-file", "postgresql", "mariadb"])
async def test_a_sign_in_of_a_session_ended_meanwhile_ends_nobody(kind: str) -> None:
    """max_per_subject=1, ada signed in on her phone. On the laptop, a sign-in whose
    anonymous session was logged out meanwhile (another tab) is refused: its new record
    was saved before the move found the old one gone, and that save's cap ended the
    phone's session, ada's only one (found by a review)."""
    async with HARNESSES[kind](max_per_subject=1) as harness:
        current = make_header_dependency(harness.store, allow, keys=SECRET, clock=harness.now)
        phone = await current.issue({"device": "phone"}, subject="ada")
        await harness.pass_time(timedelta(seconds=1))  # the laptop's session is newer
        made = await harness.store.save(new_session({"n": 1}, Expiry(), now=harness.now()))
        assert isinstance(made, Ok)
        laptop = made.value  # as the request loaded it
        await harness.store.delete(laptop.id)  # logged out in another tab
        moved = await move_session(
            harness.store, laptop, laptop.data, lambda data: data, expiry=Expiry(),
            clock=harness.now, signed_in="ada",
        )  # fmt: skip
        assert moved == Err(SessionNotFound())
        assert await harness.store.load(phone.session.id) is not None
        index = subject_index(harness.store)
        assert index is not None
        listed = await index.list_subject("ada")
        assert [info.handle for info in listed] == [session_handle(phone.session.id)]
