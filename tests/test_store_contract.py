"""The SessionStore contract, run against every store kind (see ``stores.py``)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, Field

from typed_sessions import (
    Conflict,
    Device,
    Err,
    Expiry,
    Ok,
    Session,
    SessionEncodeError,
    SessionStore,
    expire_session,
    new_session,
    replace_data,
)
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.redis import RedisStore

from .stores import HARNESSES, StoreHarness

pytestmark = pytest.mark.anyio
M = TypeVar("M", bound=BaseModel)
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[StoreHarness]:
    async with HARNESSES[request.param]() as made:
        yield made


def fresh(harness: StoreHarness, data: dict[str, Any] | None = None) -> Session[dict[str, Any]]:
    return new_session({"n": 0} if data is None else data, EXPIRY, now=harness.now())


async def saved(
    harness: StoreHarness, data: dict[str, Any] | None = None
) -> Session[dict[str, Any]]:
    result = await harness.store.save(fresh(harness, data))
    assert isinstance(result, Ok)
    return result.value


async def test_missing_is_none(harness: StoreHarness) -> None:
    assert await harness.store.load(fresh(harness).id) is None


async def test_save_then_load(harness: StoreHarness) -> None:
    session = fresh(harness, {"user": "ada", "nested": {"list": [1, 2]}})
    result = await harness.store.save(session)
    assert result == Ok(dataclasses.replace(session, version=1))
    assert await harness.store.load(session.id) == dataclasses.replace(session, version=1)


async def test_versions_advance(harness: StoreHarness) -> None:
    first = await saved(harness)
    second = await harness.store.save(replace_data(first, {"n": 1}, now=harness.now()))
    assert isinstance(second, Ok)
    assert second.value.version == 2
    loaded = await harness.store.load(first.id)
    assert loaded is not None
    assert (loaded.version, loaded.data) == (2, {"n": 1})


async def test_stale_save_conflicts_and_changes_nothing(harness: StoreHarness) -> None:
    first = await saved(harness)
    winner = await harness.store.save(replace_data(first, {"n": 1}, now=harness.now()))
    assert isinstance(winner, Ok)
    stale = await harness.store.save(replace_data(first, {"n": 99}, now=harness.now()))
    assert stale == Err(Conflict(expected=1, found=2))
    assert await harness.store.load(first.id) == winner.value


async def test_new_record_over_existing_conflicts(harness: StoreHarness) -> None:
    first = await saved(harness)
    again = dataclasses.replace(first, data={"n": 5}, version=0)
    assert await harness.store.save(again) == Err(Conflict(expected=0, found=1))
    loaded = await harness.store.load(first.id)
    assert loaded is not None
    assert loaded.data == {"n": 0}


async def test_save_of_deleted_record_conflicts(harness: StoreHarness) -> None:
    first = await saved(harness)
    await harness.store.delete(first.id)
    result = await harness.store.save(replace_data(first, {"n": 1}, now=harness.now()))
    assert result == Err(Conflict(expected=1, found=None))
    assert await harness.store.load(first.id) is None


async def test_delete_is_idempotent(harness: StoreHarness) -> None:
    first = await saved(harness)
    await harness.store.delete(first.id)
    await harness.store.delete(first.id)
    assert await harness.store.load(first.id) is None


async def test_isolation_from_caller_mutation(harness: StoreHarness) -> None:
    data: dict[str, Any] = {"list": [1], "inner": {"k": "v"}}
    first = await saved(harness, data)
    data["list"].append(2)
    loaded = await harness.store.load(first.id)
    assert loaded is not None
    loaded.data["list"].append(3)
    loaded.data["inner"]["k"] = "changed"
    again = await harness.store.load(first.id)
    assert again is not None
    assert again.data == {"list": [1], "inner": {"k": "v"}}


async def test_expired_records_are_never_returned(harness: StoreHarness) -> None:
    short = Expiry(idle=timedelta(seconds=1), absolute=timedelta(seconds=1))
    session = new_session({"n": 1}, short, now=harness.now())
    assert isinstance(await harness.store.save(session), Ok)
    assert await harness.store.load(session.id) is not None
    await harness.pass_time(timedelta(seconds=1.2))
    assert await harness.store.load(session.id) is None
    assert await harness.store.save(dataclasses.replace(session, version=1)) == Err(
        Conflict(expected=1, found=None)
    )


async def test_concurrent_saves_from_one_version_one_wins(harness: StoreHarness) -> None:
    first = await saved(harness)
    results = await asyncio.gather(
        *(harness.store.save(replace_data(first, {"n": i}, now=harness.now())) for i in range(20))
    )
    winners = [r for r in results if isinstance(r, Ok)]
    assert len(winners) == 1
    assert all(r == Err(Conflict(expected=1, found=2)) for r in results if isinstance(r, Err))
    assert await harness.store.load(first.id) == winners[0].value


async def test_concurrent_increments_with_retry_lose_nothing(harness: StoreHarness) -> None:
    first = await saved(harness)

    async def increment() -> None:
        while True:
            current = await harness.store.load(first.id)
            assert current is not None
            await asyncio.sleep(0)  # let the others interleave between load and save
            new = replace_data(current, {"n": current.data["n"] + 1}, now=harness.now())
            if isinstance(await harness.store.save(new), Ok):
                return

    await asyncio.gather(*(increment() for _ in range(25)))
    final = await harness.store.load(first.id)
    assert final is not None
    assert final.data == {"n": 25}
    assert final.version == 26


async def test_saving_a_record_that_has_ended_removes_it(harness: StoreHarness) -> None:
    first = await saved(harness)
    ended = dataclasses.replace(first, expires_at=harness.now() - timedelta(seconds=1))
    assert await harness.store.save(ended) == Ok(dataclasses.replace(ended, version=2))
    assert await harness.store.load(first.id) is None


async def test_sessions_are_independent(harness: StoreHarness) -> None:
    one = await saved(harness, {"who": "one"})
    two = await saved(harness, {"who": "two"})
    assert isinstance(await harness.store.save(replace_data(one, {"n": 1}, now=harness.now())), Ok)
    await harness.store.delete(one.id)
    assert await harness.store.load(one.id) is None
    assert await harness.store.load(two.id) == two


async def test_saving_an_ended_record_is_a_compare_and_set_delete(harness: StoreHarness) -> None:
    first = await saved(harness)
    second = await harness.store.save(replace_data(first, {"n": 1}, now=harness.now()))
    assert isinstance(second, Ok)
    # From a stale version: refused, and the record stays.
    assert await harness.store.save(expire_session(first)) == Err(Conflict(expected=1, found=2))
    assert await harness.store.load(first.id) == second.value
    # From the current version: gone.
    assert isinstance(await harness.store.save(expire_session(second.value)), Ok)
    assert await harness.store.load(first.id) is None


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def test_every_saved_record_loads_again(harness: StoreHarness) -> None:
    """Nesting pydantic serializes (up to about 250 levels) but its parser refuses (past
    about 200) is refused at ``save``, before anything is written; what saves, loads."""
    store = harness.store
    fine = await saved(harness, {"tree": nested(150)})
    loaded = await store.load(fine.id)
    assert loaded is not None
    assert loaded.data == {"tree": nested(150)}
    too_deep = fresh(harness, {"tree": nested(220)})
    with pytest.raises(SessionEncodeError, match="could not be read back"):
        await store.save(too_deep)
    assert await store.load(too_deep.id) is None
    grown = replace_data(loaded, {"tree": nested(220)}, now=harness.now())
    with pytest.raises(SessionEncodeError, match="could not be read back"):
        await store.save(grown)
    still = await store.load(fine.id)
    assert still is not None
    assert still.version == fine.version


def model_store(harness: StoreHarness, kind: str, model: type[M]) -> SessionStore[M]:
    """A store of ``model`` beside the harness's own: in memory, or on its Redis."""
    if kind == "memory":
        return MemoryStore(model, clock=harness.now)
    redis: Any = harness.store  # a RedisStore[dict]
    return RedisStore(redis.client, model, prefix=redis.prefix)


class Named(BaseModel):
    name: str = Field(max_length=10)


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_data_that_would_not_load_again_is_never_stored(kind: str) -> None:
    """A model changed without validation is refused; the stored record stays readable."""
    async with HARNESSES[kind]() as harness:
        store = model_store(harness, kind, Named)
        first = await store.save(new_session(Named(name="ada"), EXPIRY, now=harness.now()))
        assert isinstance(first, Ok)
        changed = first.value.data.model_copy(update={"name": "a name longer than ten"})
        with pytest.raises(SessionEncodeError, match="could not be read back"):
            await store.save(replace_data(first.value, changed, now=harness.now()))
        assert await store.load(first.value.id) == first.value


@pytest.mark.parametrize(
    "bad",
    [float("nan"), float("inf"), -float("inf"), [1.5, {"deep": float("nan")}], (float("inf"),)],
)
async def test_nan_and_infinity_are_refused_not_stored_as_null(
    harness: StoreHarness, bad: object
) -> None:
    """JSON cannot hold them and pydantic would write ``null`` instead: refused at
    ``save``, before anything is written, naming where; the stored record is unchanged."""
    store = harness.store
    first = await saved(harness, {"n": 1})
    with pytest.raises(SessionEncodeError, match=r"data\['x'\].*NaN or infinite"):
        await store.save(replace_data(first, {"n": 2, "x": bad}, now=harness.now()))
    assert await store.load(first.id) == first
    new = fresh(harness, {"x": bad})
    with pytest.raises(SessionEncodeError, match="NaN or infinite"):
        await store.save(new)
    assert await store.load(new.id) is None


async def test_none_and_the_text_null_still_save(harness: StoreHarness) -> None:
    """The check behind the refusal above looks closer only where ``null`` appears."""
    data = {"a": None, "b": "null", "c": [None, 0.5], "d": {"null": None}}
    record = await saved(harness, data)
    loaded = await harness.store.load(record.id)
    assert loaded is not None
    assert loaded.data == data


class Measured(BaseModel):
    value: float | None = None
    values: list[float] = []


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_a_model_with_a_nan_float_is_refused(kind: str) -> None:
    """A ``float | None`` field would come back as ``None``: refused too."""
    async with HARNESSES[kind]() as harness:
        store = model_store(harness, kind, Measured)
        for bad in (Measured(value=float("nan")), Measured(values=[1.0, float("-inf")])):
            session = new_session(bad, EXPIRY, now=harness.now())
            with pytest.raises(SessionEncodeError, match="NaN or infinite"):
                await store.save(session)
            assert await store.load(session.id) is None
        fine = await store.save(new_session(Measured(values=[0.5]), EXPIRY, now=harness.now()))
        assert isinstance(fine, Ok)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"x": {1: "a", "1": "b"}}, r"data\['x'\] has the key 1"),  # would collide: "b" lost
        ({"x": [{"ok": 1}, {(1, 2): 0}]}, r"data\['x'\]\[1\] has the key \(1, 2\)"),
        ({"x": {None: 1}}, r"data\['x'\] has the key None"),
        ({1: "top"}, "data has the key 1"),
        # pydantic writes a lone surrogate in a key as U+FFFD: these two would meet
        (dict.fromkeys(["\ud800", "\udc00"], 1), r"data has the key '\\ud800'"),
    ],
)
async def test_dict_keys_that_are_not_str_are_refused(
    harness: StoreHarness, data: dict[Any, Any], where: str
) -> None:
    """JSON would write such a key as a string: the data would come back changed, or
    lose a value when two keys meet. Refused before anything is written."""
    first = await saved(harness, {"n": 1})
    with pytest.raises(SessionEncodeError, match=where):
        await harness.store.save(replace_data(first, data, now=harness.now()))
    assert await harness.store.load(first.id) == first


async def test_a_device_that_is_not_valid_unicode_is_kept_or_refused(
    harness: StoreHarness,
) -> None:
    """A device built by hand with a lone surrogate (``device_from`` never makes one):
    saved as it is, or refused with ``SessionEncodeError`` (not pydantic's own error),
    with nothing written."""
    session: Session[dict[str, Any]] = new_session(
        {}, EXPIRY, now=harness.now(), device=Device("agent\udcff")
    )
    try:
        result = await harness.store.save(session)
    except SessionEncodeError:
        assert await harness.store.load(session.id) is None
        return
    assert isinstance(result, Ok)
    loaded = await harness.store.load(session.id)
    assert loaded is not None
    assert loaded.device == Device("agent\udcff")


class Scores(BaseModel):
    by_level: dict[int, float] = {}


async def test_a_model_keeps_its_own_key_types() -> None:
    """A model's ``dict[int, ...]`` field validates its keys back: not refused."""
    store: MemoryStore[Scores] = MemoryStore(Scores)
    record = new_session(Scores(by_level={1: 0.5, 2: 1.0}), EXPIRY, now=datetime.now(UTC))
    result = await store.save(record)
    assert isinstance(result, Ok)
    loaded = await store.load(record.id)
    assert loaded is not None
    assert loaded.data == Scores(by_level={1: 0.5, 2: 1.0})
