"""The verified-token cache of each keyring: bounded, never holding a token that failed,
separate per keyring, and never a way around the age check or the store."""

# pyright: reportPrivateUsage=false
# (the tests look inside the cache: which tokens it holds, not only how many)

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SECRET, START, FakeClock
from typed_sessions import (
    DEFAULT_CLOCK_SKEW,
    TOKEN_CACHE_SIZE,
    Err,
    Expiry,
    Keyring,
    Ok,
    TokenError,
    new_session_id,
    sign_session_id,
    verify_session_token,
)
from typed_sessions.core.keyring import remember
from typed_sessions.core.signing import verify_token_at

from .middleware.conftest import BASE, COOKIE, SpyStore, build_app, token_of

OTHER_SECRET = "another-secret-of-at-least-thirty-two-bytes!"
HOUR = timedelta(hours=1)


def cached(keyring: Keyring, token: str) -> bool:
    return token in keyring.tokens


def test_a_verified_token_is_remembered_and_gives_the_same_answer(keyring: Keyring) -> None:
    session_id = new_session_id()
    token = sign_session_id(session_id, keyring, now=START)
    assert keyring.cached_tokens == 0
    assert verify_session_token(token, keyring, now=START) == Ok(session_id)
    assert cached(keyring, token)
    assert verify_session_token(token, keyring, now=START) == Ok(session_id)
    assert keyring.cached_tokens == 1


def test_the_cache_is_bounded(keyring: Keyring) -> None:
    tokens = [
        sign_session_id(new_session_id(), keyring, now=START) for _ in range(TOKEN_CACHE_SIZE + 50)
    ]
    for token in tokens:
        assert isinstance(verify_session_token(token, keyring, now=START), Ok)
        assert keyring.cached_tokens <= TOKEN_CACHE_SIZE
    batch = TOKEN_CACHE_SIZE // 16  # when full, the oldest sixteenth goes at once
    assert keyring.cached_tokens == TOKEN_CACHE_SIZE - batch + 50
    assert not any(cached(keyring, token) for token in tokens[:batch])  # the oldest went
    assert all(cached(keyring, token) for token in tokens[batch:])
    assert isinstance(verify_session_token(tokens[0], keyring, now=START), Ok)  # checked again


def tampered(token: str) -> list[str]:
    """Every one-character change of the tag, the ID and the time, plus a few shapes."""
    out: list[str] = []
    for index in (8, 10, 19, 20, 40, 62, 63, 64, 100, 126):
        flipped = "A" if token[index] != "A" else "B"
        out.append(token[:index] + flipped + token[index + 1 :])
    return [*out, token[:-1], token + "0", token.upper(), "", "x" * len(token)]


def test_a_token_that_fails_is_never_remembered(keyring: Keyring) -> None:
    token = sign_session_id(new_session_id(), keyring, now=START)
    for bad in tampered(token):
        assert isinstance(verify_session_token(bad, keyring, now=START), Err)
    other = Keyring.from_secrets(OTHER_SECRET)
    foreign = sign_session_id(new_session_id(), other, now=START)
    assert verify_session_token(foreign, keyring, now=START) == Err(TokenError.UNKNOWN_KEY)
    assert keyring.cached_tokens == 0


def test_a_token_refused_for_its_age_is_not_remembered(keyring: Keyring) -> None:
    token = sign_session_id(new_session_id(), keyring, now=START)
    too_late = START + 2 * HOUR
    assert verify_session_token(token, keyring, now=too_late, max_age=HOUR) == Err(
        TokenError.EXPIRED
    )
    too_early = START - timedelta(hours=1)
    assert verify_session_token(token, keyring, now=too_early) == Err(TokenError.FUTURE)
    assert keyring.cached_tokens == 0


def test_a_cached_token_still_gets_the_age_check_and_is_then_forgotten(
    keyring: Keyring,
) -> None:
    session_id = new_session_id()
    token = sign_session_id(session_id, keyring, now=START)
    assert verify_session_token(token, keyring, now=START, max_age=HOUR) == Ok(session_id)
    assert cached(keyring, token)
    later = START + HOUR + timedelta(seconds=1)
    assert verify_session_token(token, keyring, now=later, max_age=HOUR) == Err(TokenError.EXPIRED)
    assert not cached(keyring, token)
    assert verify_session_token(token, keyring, now=START, max_age=HOUR) == Ok(session_id)
    earlier = START - timedelta(minutes=10)  # the clock went back past the allowed skew
    assert verify_session_token(token, keyring, now=earlier) == Err(TokenError.FUTURE)
    assert not cached(keyring, token)


def test_each_keyring_has_its_own_cache(keyring: Keyring) -> None:
    session_id = new_session_id()
    token = sign_session_id(session_id, keyring, now=START)
    assert verify_session_token(token, keyring, now=START) == Ok(session_id)
    same_secret = Keyring.from_secrets(SECRET)
    assert same_secret.cached_tokens == 0  # a new keyring starts empty
    other_purpose = Keyring.from_secrets(SECRET, purpose="csrf")
    assert verify_session_token(token, other_purpose, now=START) == Err(TokenError.UNKNOWN_KEY)
    assert other_purpose.cached_tokens == 0
    rotated = Keyring.from_secrets(OTHER_SECRET)  # the old secret dropped: refused at once
    assert verify_session_token(token, rotated, now=START) == Err(TokenError.UNKNOWN_KEY)
    keyring.clear_token_cache()
    assert keyring.cached_tokens == 0
    assert verify_session_token(token, keyring, now=START) == Ok(session_id)


def test_a_str_subclass_is_checked_but_never_remembered(keyring: Keyring) -> None:
    class Sneaky(str):
        __slots__ = ()

    session_id = new_session_id()
    token = Sneaky(sign_session_id(session_id, keyring, now=START))
    assert verify_token_at(token, keyring, START.timestamp(), None) == session_id
    assert keyring.cached_tokens == 0


def test_unhashable_and_other_values_are_refused_without_raising(keyring: Keyring) -> None:
    for value in (None, 1, b"x" * 127, ["x"] * 127, {"a": 1}):
        assert verify_session_token(value, keyring, now=START) == Err(TokenError.MALFORMED)  # type: ignore[arg-type]  # hostile values on purpose
    assert keyring.cached_tokens == 0


# --- the cache never changes an answer --------------------------------------------------

KEYRING = Keyring.from_secrets(SECRET)
IDS = [new_session_id() for _ in range(3)]
TOKENS = [sign_session_id(i, KEYRING, now=START + timedelta(seconds=n)) for n, i in enumerate(IDS)]


@st.composite
def checks(draw: st.DrawFn) -> tuple[str, int, int | None]:
    token = draw(
        st.one_of(
            st.sampled_from(TOKENS),
            st.sampled_from(TOKENS).flatmap(lambda t: st.sampled_from(tampered(t))),
            st.text(max_size=130),
        )
    )
    offset = draw(st.integers(min_value=-400, max_value=8000))
    max_age = draw(st.none() | st.integers(min_value=0, max_value=7200))
    return token, offset, max_age


@settings(max_examples=200, deadline=None)
@given(st.lists(checks(), max_size=30))
def test_every_answer_is_the_uncached_answer(calls: list[tuple[str, int, int | None]]) -> None:
    KEYRING.clear_token_cache()
    cold = Keyring.from_secrets(SECRET)
    for token, offset, max_age in calls:
        now = START + timedelta(seconds=offset)
        age = None if max_age is None else timedelta(seconds=max_age)
        answer = verify_session_token(token, KEYRING, now=now, max_age=age)
        cold.clear_token_cache()
        assert answer == verify_session_token(token, cold, now=now, max_age=age)
        # only tokens that passed, all of ours
        for remembered in KEYRING.tokens:
            assert remembered in TOKENS
        if isinstance(answer, Err):
            assert not cached(KEYRING, token)


# Settings are drawn from fixed objects, as an application passes its own on every call:
# the cache keeps the window of `now` that one pair of `clock_skew` and `max_age` objects
# allows, so repeats with the same objects must hit it and others must not.
SKEWS = [DEFAULT_CLOCK_SKEW, timedelta(0), timedelta(seconds=-5), timedelta.max, timedelta.min]
AGES = [None, HOUR, timedelta(0), timedelta(microseconds=1), timedelta(days=-1), timedelta.max]
ZONES = [UTC, timezone(timedelta(hours=5)), timezone(-timedelta(hours=3, minutes=30))]
FAR = [datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)]
EVERY_TOKEN = [*TOKENS, *(sign_session_id(new_session_id(), KEYRING, now=t) for t in FAR)]


@st.composite
def moments(draw: st.DrawFn) -> datetime:
    zone = draw(st.sampled_from(ZONES))
    anywhere = st.datetimes(timezones=st.just(zone))
    near = st.integers(-7200 * 10**6, 7200 * 10**6).map(
        lambda us: (START + timedelta(microseconds=us)).astimezone(zone)
    )
    edges = st.one_of(  # around the first and the last second a token can carry
        st.integers(-(10**8), 10**8).map(lambda us: FAR[0] + timedelta(microseconds=us)),
        st.integers(-(10**8), 999_999).map(lambda us: FAR[1] + timedelta(microseconds=us)),
    )
    return draw(st.one_of(near, near, anywhere, edges))


@st.composite
def timed_checks(draw: st.DrawFn) -> tuple[int, datetime, int, int, bool]:
    """Which token (mostly the example's first), when, which of the example's two
    ``max_age`` and two ``clock_skew`` values, and which function."""
    which = draw(st.integers(0, 9))
    public = draw(st.integers(0, 3)) != 0  # verify_session_token, or verify_token_at
    return which, draw(moments()), draw(st.integers(0, 1)), draw(st.integers(0, 1)), public


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(EVERY_TOKEN),
    st.sampled_from(EVERY_TOKEN),
    st.text(max_size=130),
    st.lists(st.sampled_from(AGES), min_size=2, max_size=2),
    st.lists(st.sampled_from(SKEWS), min_size=2, max_size=2),
    st.lists(timed_checks(), max_size=25),
)
def test_cached_and_uncached_verification_agree_at_every_time(
    token: str,
    other: str,
    text: str,
    ages: list[timedelta | None],
    skews: list[timedelta],
    calls: list[tuple[int, datetime, int, int, bool]],
) -> None:
    KEYRING.clear_token_cache()
    cold = Keyring.from_secrets(SECRET)
    for which, now, age_index, skew_index, public in calls:
        max_age, skew = ages[age_index], skews[skew_index]
        checked = token if which < 7 else other if which < 9 else text
        cold.clear_token_cache()
        if public:
            answer: object = verify_session_token(
                checked, KEYRING, now=now, max_age=max_age, clock_skew=skew
            )
            expected: object = verify_session_token(
                checked, cold, now=now, max_age=max_age, clock_skew=skew
            )
            failed = isinstance(answer, Err)
        else:
            seconds = None if max_age is None else max_age.total_seconds()
            stamp, slack = now.timestamp(), skew.total_seconds()
            answer = verify_token_at(checked, KEYRING, stamp, seconds, slack)
            expected = verify_token_at(checked, cold, stamp, seconds, slack)
            failed = isinstance(answer, TokenError)
        assert answer == expected
        assert set(KEYRING.tokens) <= set(EVERY_TOKEN)  # only tokens that passed
        if failed:
            assert not cached(KEYRING, checked)
        assert KEYRING.cached_tokens <= TOKEN_CACHE_SIZE


def test_a_cached_token_is_checked_again_under_other_settings(keyring: Keyring) -> None:
    session_id = new_session_id()
    token = sign_session_id(session_id, keyring, now=START)
    later = START + timedelta(minutes=30)
    assert verify_session_token(token, keyring, now=later, max_age=HOUR) == Ok(session_id)
    assert cached(keyring, token)
    shorter = timedelta(minutes=10)  # another object: the remembered window does not apply
    assert verify_session_token(token, keyring, now=later, max_age=shorter) == Err(
        TokenError.EXPIRED
    )
    assert not cached(keyring, token)
    assert verify_session_token(token, keyring, now=START, max_age=HOUR) == Ok(session_id)
    assert verify_session_token(token, keyring, now=START, clock_skew=timedelta(0)) == Ok(
        session_id
    )
    early = START - timedelta(seconds=1)  # within the default skew, not within none
    assert verify_session_token(token, keyring, now=early, clock_skew=timedelta(0)) == Err(
        TokenError.FUTURE
    )
    assert not cached(keyring, token)


def test_a_naive_now_raises_on_the_cached_path_too(keyring: Keyring) -> None:
    token = sign_session_id(new_session_id(), keyring, now=START)
    assert isinstance(verify_session_token(token, keyring, now=START, max_age=HOUR), Ok)
    assert cached(keyring, token)
    for naive in (START.replace(tzinfo=None), datetime(2026, 1, 1)):
        with pytest.raises(ValueError, match="aware"):
            verify_session_token(token, keyring, now=naive, max_age=HOUR)
    with pytest.raises(ValueError, match="aware"):  # and for a refused token
        verify_session_token("x" * 127, keyring, now=datetime(2026, 1, 1))


def test_a_token_first_verified_at_unix_seconds_then_by_the_public_function(
    keyring: Keyring,
) -> None:
    session_id = new_session_id()
    token = sign_session_id(session_id, keyring, now=START)
    assert verify_token_at(token, keyring, START.timestamp(), None) == session_id
    assert cached(keyring, token)
    first = verify_session_token(token, keyring, now=START, max_age=HOUR)
    assert first == Ok(session_id)
    assert verify_session_token(token, keyring, now=START, max_age=HOUR) is first  # shared
    assert verify_token_at(token, keyring, START.timestamp(), 3600.0) == session_id
    assert keyring.cached_tokens == 1


# --- through the middleware: the store still decides ------------------------------------


@pytest.mark.anyio
async def test_an_ended_session_ends_at_once_though_its_token_is_cached(
    keyring: Keyring, clock: FakeClock
) -> None:
    store = SpyStore(clock)
    app = build_app(store, keyring, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        first = await c.get("/set/user?value=alice")
        token = token_of(first)
        assert (await c.get("/read")).json() == {"user": "alice"}
        assert cached(keyring, token)
        loads = store.loads
        await c.get("/invalidate")
        assert store.loads == loads + 1  # every request reads the store
        c.cookies.set(COOKIE, token)  # the old cookie, replayed
        assert (await c.get("/read")).json() == {}
        assert store.loads == loads + 2


@pytest.mark.anyio
async def test_an_expired_session_stays_expired_though_its_token_is_cached(
    keyring: Keyring, clock: FakeClock
) -> None:
    store = SpyStore(clock)
    expiry = Expiry(idle=timedelta(minutes=5), absolute=HOUR)
    app = build_app(store, keyring, clock, expiry=expiry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        token = token_of(await c.get("/set/user?value=alice"))
        assert (await c.get("/read")).json() == {"user": "alice"}
        assert cached(keyring, token)
        clock.advance(timedelta(minutes=6))  # idle past: the record is over, the token not
        assert (await c.get("/read")).json() == {}
        c.cookies.set(COOKIE, token)
        clock.advance(HOUR)  # now the token is too old as well: refused, and forgotten
        assert (await c.get("/read")).json() == {}
        assert not cached(keyring, token)


def test_the_bounded_cache_replaces_a_key_without_evicting_another() -> None:
    cache = {n: str(n) for n in range(4)}
    remember(cache, 2, "two", 4)
    assert cache == {0: "0", 1: "1", 2: "two", 3: "3"}
    remember(cache, 4, "4", 4)  # a new key: the oldest goes
    assert list(cache) == [1, 2, 3, 4]


def test_a_full_cache_drops_its_oldest_sixteenth_at_once() -> None:
    """One at a time, each drop would scan past the slots of those dropped before it."""
    cache = {n: n for n in range(64)}
    remember(cache, 64, 64, 64)
    assert list(cache) == list(range(4, 65))
    for n in range(65, 125):  # room for 3 more, then the next 4 oldest go
        remember(cache, n, n, 64)
        assert len(cache) <= 64
    assert list(cache) == list(range(64, 125))
