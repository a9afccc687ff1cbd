"""The SubjectIndex contract, run against every store kind (see ``stores.py``).

Every built-in store keeps the index; a harness whose store does not is skipped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from typed_sessions import (
    Conflict,
    Device,
    Err,
    Expiry,
    MemoryStore,
    Ok,
    Result,
    Session,
    SessionId,
    SessionInfo,
    SubjectIndex,
    expire_session,
    is_expired,
    new_session,
    replace_data,
    session_handle,
    subject_index,
)
from typed_sessions.stores.operations import UpdateError, move_session
from typed_sessions.stores.redis import RedisStore

from .stores import HARNESSES, StoreHarness

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
SHORT = Expiry(idle=timedelta(seconds=1), absolute=timedelta(seconds=1))
PHONE = Device("Mozilla/5.0 (iPhone)", "203.0.113.0/24")


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[StoreHarness]:
    async with HARNESSES[request.param]() as made:
        yield made


def index_of(harness: StoreHarness) -> SubjectIndex:
    index = subject_index(harness.store)
    if index is None:
        pytest.skip(f"{type(harness.store).__name__} keeps no subject index")
    return index


async def sign_in(
    harness: StoreHarness,
    subject: str | None,
    *,
    ago: timedelta = timedelta(0),
    expiry: Expiry = EXPIRY,
    device: Device | None = None,
) -> Session[dict[str, Any]]:
    """Save a new session of ``subject``, started ``ago`` before now."""
    started = harness.now() - ago
    session = new_session(
        {"who": subject}, expiry, now=started, subject=subject, auth_time=started, device=device
    )
    result = await harness.store.save(session)
    assert isinstance(result, Ok)
    return result.value


def info(session: Session[Any]) -> SessionInfo:
    assert session.subject is not None
    return SessionInfo(
        session_handle(session.id),
        session.subject,
        session.created_at,
        session.last_active,
        session.expires_at,
        session.auth_time,
        session.device,
    )


async def index_entries(harness: StoreHarness, subject: str) -> int | None:
    """How many entries the store's index holds for ``subject`` (None: not known)."""
    store: Any = harness.store
    if isinstance(store, MemoryStore):
        return len(store._subjects.get(subject, {}))  # pyright: ignore[reportPrivateUsage]
    if isinstance(store, RedisStore):
        count: int = await store.client.zcard(store.index_key_for(subject))
        return count
    return None


def test_the_built_in_stores_keep_the_index() -> None:
    assert subject_index(MemoryStore(dict[str, Any])) is not None
    assert subject_index(object()) is None


async def test_list_gives_a_subjects_live_sessions_oldest_first(harness: StoreHarness) -> None:
    index = index_of(harness)
    middle = await sign_in(harness, "ada", ago=timedelta(minutes=2), device=PHONE)
    oldest = await sign_in(harness, "ada", ago=timedelta(minutes=5))
    newest = await sign_in(harness, "ada")
    await sign_in(harness, "bob")
    await sign_in(harness, None)
    assert await index.list_subject("ada") == [info(oldest), info(middle), info(newest)]
    assert await index.list_subject("nobody") == []
    [bobs] = await index.list_subject("bob")
    assert bobs.subject == "bob"
    assert not bobs.current


async def test_list_shows_the_latest_save(harness: StoreHarness) -> None:
    index = index_of(harness)
    first = await sign_in(harness, "ada")
    later = harness.now() + timedelta(minutes=1)
    moved = dataclasses.replace(
        replace_data(first, {"n": 1}, now=later), expires_at=later + EXPIRY.idle
    )
    result = await harness.store.save(moved)
    assert isinstance(result, Ok)
    assert await index.list_subject("ada") == [info(result.value)]


async def test_end_one_by_handle(harness: StoreHarness) -> None:
    index = index_of(harness)
    keep = await sign_in(harness, "ada", ago=timedelta(minutes=1))
    end = await sign_in(harness, "ada")
    handle = session_handle(end.id)
    assert await index.end_subject_session("ada", handle) is True
    assert await harness.store.load(end.id) is None
    assert await harness.store.load(keep.id) == keep
    assert await index.list_subject("ada") == [info(keep)]
    assert await index.end_subject_session("ada", handle) is False  # reused: nothing left


async def test_no_subject_can_end_another_subjects_session(harness: StoreHarness) -> None:
    index = index_of(harness)
    adas = await sign_in(harness, "ada")
    bobs = await sign_in(harness, "bob")
    anonymous = await sign_in(harness, None)
    guesses = [
        session_handle(adas.id),  # taken from another user
        session_handle(anonymous.id),  # a session with no subject
        secrets.token_urlsafe(16)[:22],  # guessed
        "A" * 22,
        "",
        "x" * 10_000,
        "../" * 8,
        "é" * 22,
        "*",
        adas.id,  # the raw session ID is not a handle
        session_handle(adas.id) + "=",
    ]
    for guess in guesses:
        assert await index.end_subject_session("bob", guess) is False
    assert await index.end_subject("bob", keep=adas.id) == 1  # keep of another's: nothing
    for session in (adas, anonymous):
        assert await harness.store.load(session.id) == session
    assert await harness.store.load(bobs.id) is None
    assert await index.list_subject("ada") == [info(adas)]
    assert await index.list_subject("bob") == []


async def test_end_all_but_the_current_one(harness: StoreHarness) -> None:
    index = index_of(harness)
    current = await sign_in(harness, "ada", ago=timedelta(minutes=3))
    others = [await sign_in(harness, "ada") for _ in range(3)]
    bobs = await sign_in(harness, "bob")
    assert await index.end_subject("ada", keep=current.id) == 3
    for other in others:
        assert await harness.store.load(other.id) is None
    assert await harness.store.load(current.id) == current
    assert await harness.store.load(bobs.id) == bobs
    assert await index.list_subject("ada") == [info(current)]
    assert await index.end_subject("ada") == 1  # the account is disabled: all of them
    assert await index.list_subject("ada") == []
    assert await index_entries(harness, "ada") in (0, None)
    assert await index.end_subject("ada") == 0


async def test_end_all_subjects(harness: StoreHarness) -> None:
    index = index_of(harness)
    signed_in = [await sign_in(harness, subject) for subject in ("ada", "ada", "bob", "cy")]
    anonymous = await sign_in(harness, None)
    assert await index.end_all() == 4
    for session in signed_in:
        assert await harness.store.load(session.id) is None
    assert await harness.store.load(anonymous.id) == anonymous  # no subject: kept
    for subject in ("ada", "bob", "cy"):
        assert await index.list_subject(subject) == []
    assert await index.end_all() == 0


async def test_expired_sessions_are_never_listed_and_leave_the_index(
    harness: StoreHarness,
) -> None:
    index = index_of(harness)
    lasting = await sign_in(harness, "ada")
    short = [await sign_in(harness, "ada", expiry=SHORT) for _ in range(2)]
    assert len(await index.list_subject("ada")) == 3
    await harness.pass_time(timedelta(seconds=1.2))
    assert await index.list_subject("ada") == [info(lasting)]
    assert await index_entries(harness, "ada") in (1, None)
    assert all(
        [await index.end_subject_session("ada", session_handle(s.id)) is False for s in short]
    )
    assert await index.end_subject("ada") == 1


async def test_ended_and_deleted_sessions_leave_the_list(harness: StoreHarness) -> None:
    index = index_of(harness)
    ended = await sign_in(harness, "ada")
    deleted = await sign_in(harness, "ada")
    kept = await sign_in(harness, "ada")
    assert isinstance(await harness.store.save(expire_session(ended)), Ok)
    await harness.store.delete(deleted.id)
    assert await index.list_subject("ada") == [info(kept)]
    assert await index_entries(harness, "ada") in (1, None)


async def test_rotation_keeps_the_subject(harness: StoreHarness) -> None:
    """Sign-in rotates: a new ID holding the same subject; the old ID is gone."""
    index = index_of(harness)
    before = await sign_in(harness, "ada")
    rotated = dataclasses.replace(before, id=SessionId(secrets.token_urlsafe(32)), version=0)
    result = await harness.store.save(rotated)
    assert isinstance(result, Ok)
    await harness.store.delete(before.id)
    assert await index.list_subject("ada") == [info(result.value)]
    assert await index.end_subject("ada") == 1
    assert await harness.store.load(rotated.id) is None


async def test_a_save_that_changes_the_subject_moves_the_session(harness: StoreHarness) -> None:
    index = index_of(harness)
    anonymous = await sign_in(harness, None)
    as_ada = await harness.store.save(dataclasses.replace(anonymous, subject="ada"))
    assert isinstance(as_ada, Ok)
    assert await index.list_subject("ada") == [info(as_ada.value)]
    as_bob = await harness.store.save(dataclasses.replace(as_ada.value, subject="bob"))
    assert isinstance(as_bob, Ok)
    assert await index.list_subject("ada") == []
    assert await index.end_subject_session("ada", session_handle(anonymous.id)) is False
    assert await index.end_subject("ada") == 0
    assert await harness.store.load(anonymous.id) == as_bob.value
    assert await index.list_subject("bob") == [info(as_bob.value)]
    signed_out = await harness.store.save(dataclasses.replace(as_bob.value, subject=None))
    assert isinstance(signed_out, Ok)
    assert await index.list_subject("bob") == []
    assert await index.end_all() == 0
    assert await harness.store.load(anonymous.id) == signed_out.value


@pytest.mark.parametrize("kind", sorted(HARNESSES))
async def test_the_cap_ends_the_oldest(kind: str) -> None:
    """GitLab's cap: the 101st sign-in of a subject with a cap of 100 ends the oldest."""
    async with HARNESSES[kind](max_per_subject=100) as harness:
        index = index_of(harness)
        start = harness.now() - timedelta(minutes=20)
        sessions: list[Session[dict[str, Any]]] = []
        for i in range(100):
            made: Session[dict[str, Any]] = new_session(
                {}, EXPIRY, now=start + timedelta(seconds=i), subject="ada"
            )
            result = await harness.store.save(made)
            assert isinstance(result, Ok)
            sessions.append(result.value)
        other = await sign_in(harness, "bob", ago=timedelta(minutes=25))
        assert len(await index.list_subject("ada")) == 100
        newest = await sign_in(harness, "ada")
        listed = await index.list_subject("ada")
        assert [i.handle for i in listed] == [session_handle(s.id) for s in [*sessions[1:], newest]]
        assert await harness.store.load(sessions[0].id) is None
        assert await harness.store.load(other.id) == other  # another subject: untouched
        # Saving a session again does not end another one.
        again = await harness.store.save(replace_data(newest, {"n": 1}, now=harness.now()))
        assert isinstance(again, Ok)
        assert len(await index.list_subject("ada")) == 100


async def capped_sessions(
    harness: StoreHarness, subject: str, count: int
) -> list[Session[dict[str, Any]]]:
    """``count`` sessions of ``subject``, started a minute apart, oldest first."""
    return [await sign_in(harness, subject, ago=timedelta(minutes=count - i)) for i in range(count)]


@pytest.mark.parametrize("kind", sorted(HARNESSES))
@pytest.mark.parametrize("which", [0, 1, 2])
async def test_a_rotation_at_the_cap_ends_no_other_session(kind: str, which: int) -> None:
    """The moved record and the one it replaces count once: no other device is signed out."""
    async with HARNESSES[kind](max_per_subject=3) as harness:
        index = index_of(harness)
        sessions = await capped_sessions(harness, "ada", 3)
        moved = await move_session(
            harness.store, sessions[which], {"moved": True}, lambda data: data,
            expiry=EXPIRY, clock=harness.now,
        )  # fmt: skip
        assert isinstance(moved, Ok)
        kept = [s for i, s in enumerate(sessions) if i != which]
        for session in kept:
            assert await harness.store.load(session.id) == session
        assert await harness.store.load(sessions[which].id) is None
        listed = {i.handle for i in await index.list_subject("ada")}
        assert listed == {session_handle(s.id) for s in [*kept, moved.value]}


@pytest.mark.parametrize("kind", sorted(HARNESSES))
async def test_authenticating_again_at_the_cap_ends_no_other_session(kind: str) -> None:
    async with HARNESSES[kind](max_per_subject=2) as harness:
        sessions = await capped_sessions(harness, "ada", 2)
        moved = await move_session(
            harness.store, sessions[1], {}, lambda data: data, expiry=EXPIRY,
            clock=harness.now, signed_in="ada",
        )  # fmt: skip
        assert isinstance(moved, Ok)
        assert await harness.store.load(sessions[0].id) == sessions[0]
        assert await harness.store.load(moved.value.id) == moved.value


@pytest.mark.parametrize("kind", sorted(HARNESSES))
async def test_a_sign_in_at_the_cap_keeps_the_signed_in_session(kind: str) -> None:
    """An anonymous session older than all of the subject's: signing it in ends the
    subject's oldest session, never the one just signed in."""
    async with HARNESSES[kind](max_per_subject=2) as harness:
        index = index_of(harness)
        anonymous = await sign_in(harness, None, ago=timedelta(minutes=10))
        sessions = await capped_sessions(harness, "ada", 2)
        moved = await move_session(
            harness.store, anonymous, {}, lambda data: data, expiry=EXPIRY,
            clock=harness.now, signed_in="ada",
        )  # fmt: skip
        assert isinstance(moved, Ok)
        assert await harness.store.load(moved.value.id) == moved.value
        assert await harness.store.load(sessions[0].id) is None
        assert await harness.store.load(sessions[1].id) == sessions[1]
        listed = {i.handle for i in await index.list_subject("ada")}
        assert listed == {session_handle(s.id) for s in [sessions[1], moved.value]}


def hold_endings(harness: StoreHarness, until: Callable[[], Awaitable[object]]) -> None:
    """Every move waits, before it ends its old record, for ``until()``: what requests of
    one user running at once do."""
    store: Any = harness.store
    save = store.save

    async def held(session: Session[dict[str, Any]]) -> Any:
        if is_expired(session, now=harness.now()):  # a move ending its old record
            await until()
        return await save(session)

    store.save = held


async def move(
    harness: StoreHarness, session: Session[dict[str, Any]]
) -> Result[Session[dict[str, Any]], UpdateError]:
    return await move_session(
        harness.store, session, {"moved": True}, lambda data: data, expiry=EXPIRY,
        clock=harness.now,
    )  # fmt: skip


@pytest.mark.parametrize("kind", sorted(HARNESSES))
async def test_rotations_at_once_at_the_cap_end_no_other_session(kind: str) -> None:
    """Two devices rotate at once, and one device twice (a double submit): each move's
    two records count once, for the other moves too."""
    async with HARNESSES[kind](max_per_subject=3) as harness:
        a, b, c = await capped_sessions(harness, "ada", 3)
        barrier = asyncio.Barrier(3)
        hold_endings(harness, barrier.wait)
        moved = await asyncio.gather(move(harness, b), move(harness, c), move(harness, c))
        assert isinstance(moved[0], Ok)
        assert [isinstance(m, Ok) for m in moved[1:]].count(True) == 1  # c moved once
        assert await harness.store.load(a.id) == a
        assert len(await index_of(harness).list_subject("ada")) == 3


@pytest.mark.parametrize("kind", sorted(HARNESSES))
async def test_a_sign_in_during_a_rotation_at_the_cap_ends_one_session(kind: str) -> None:
    async with HARNESSES[kind](max_per_subject=3) as harness:
        a, b, c = await capped_sessions(harness, "ada", 3)
        ending, signed = asyncio.Event(), asyncio.Event()

        async def sign_in_meanwhile() -> None:
            ending.set()
            await signed.wait()

        hold_endings(harness, sign_in_meanwhile)
        rotation = asyncio.create_task(move(harness, c))
        await ending.wait()
        d = await sign_in(harness, "ada")  # a fourth device: the oldest, a, goes
        signed.set()
        assert isinstance(await rotation, Ok)
        assert await harness.store.load(a.id) is None
        assert await harness.store.load(b.id) == b
        assert await harness.store.load(d.id) == d
        assert len(await index_of(harness).list_subject("ada")) == 3


@pytest.mark.parametrize("kind", sorted(HARNESSES))
async def test_a_cap_of_one_keeps_the_newest_sign_in(kind: str) -> None:
    async with HARNESSES[kind](max_per_subject=1) as harness:
        (a,) = await capped_sessions(harness, "ada", 1)
        moved = await move(harness, a)
        assert isinstance(moved, Ok)
        assert await harness.store.load(moved.value.id) == moved.value
        b = await sign_in(harness, "ada")
        assert await harness.store.load(moved.value.id) is None
        assert await index_of(harness).list_subject("ada") == [info(b)]


async def test_subjects_are_compared_exactly(harness: StoreHarness) -> None:
    """User IDs are case-sensitive and keep their spaces (MariaDB's default collation
    ignores both): "ada" never lists, ends or caps the sessions of "Ada" or "ada "."""
    index = index_of(harness)
    others = [await sign_in(harness, subject) for subject in ("Ada", "ada ", "ADA")]
    mine = await sign_in(harness, "ada")
    assert await index.list_subject("ada") == [info(mine)]
    assert await index.end_subject_session("ada", session_handle(others[0].id)) is False
    assert await index.end_subject_session("ada", session_handle(mine.id).swapcase()) is False
    assert await index.end_subject("ada") == 1
    for other in others:
        assert await harness.store.load(other.id) == other


@pytest.mark.parametrize("handle", ["\x00" * 22, "\ud800" * 22, "\u00e9" * 22, "a" * 21 + "="])
async def test_a_malformed_handle_ends_nothing(harness: StoreHarness, handle: str) -> None:
    index = index_of(harness)
    session = await sign_in(harness, "ada")
    assert await index.end_subject_session("ada", handle) is False
    assert await harness.store.load(session.id) == session


def test_a_handle_differing_only_in_case_is_another_handle() -> None:
    handle = session_handle(SessionId("an-id"))
    assert handle != handle.swapcase()  # so the stores must compare handles exactly


async def test_a_request_in_flight_cannot_bring_an_ended_session_back(
    harness: StoreHarness,
) -> None:
    index = index_of(harness)
    session = await sign_in(harness, "ada")
    loaded = await harness.store.load(session.id)  # a request of that session, running
    assert loaded is not None
    assert await index.end_subject("ada") == 1  # "sign out everywhere" meanwhile
    late = await harness.store.save(replace_data(loaded, {"n": 1}, now=harness.now()))
    assert late == Err(Conflict(expected=1, found=None))
    assert await harness.store.load(session.id) is None
    assert await index.list_subject("ada") == []


async def test_ending_all_while_requests_save_ends_every_one(harness: StoreHarness) -> None:
    index = index_of(harness)
    sessions = [await sign_in(harness, "ada") for _ in range(20)]
    writes = [
        harness.store.save(replace_data(s, {"n": i}, now=harness.now()))
        for i, s in enumerate(sessions)
    ]
    results = await asyncio.gather(*writes[:10], index.end_subject("ada"), *writes[10:])
    ended = results[10]
    assert isinstance(ended, int)
    assert 1 <= ended <= 20
    for session in sessions:
        assert await harness.store.load(session.id) is None
    assert await index.list_subject("ada") == []


@pytest.mark.parametrize("bad", ["", "a\nb", "x" * 257, "\u202e"])
async def test_a_session_with_an_invalid_subject_is_never_stored(
    harness: StoreHarness, bad: str
) -> None:
    index_of(harness)
    made: Session[dict[str, Any]] = new_session({}, EXPIRY, now=harness.now())
    made = dataclasses.replace(made, subject=bad)
    with pytest.raises(ValueError, match="subject"):
        await harness.store.save(made)
    assert await harness.store.load(made.id) is None
