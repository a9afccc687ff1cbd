"""The ``Cookie`` header, read as an attacker writes it: one spelling per token (quotes
are not stripped), linear parsing of a hostile megabyte, values longer than any token
refused before any parsing, through the core and through an app."""

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from hypothesis import given
from hypothesis import strategies as st

from typed_sessions import (
    TOKEN_LENGTH,
    CookieSettings,
    Err,
    Expiry,
    Keyring,
    MemoryStore,
    Ok,
    Session,
    TokenError,
    make_cookie_dependency,
    new_session,
    new_session_id,
    parse_cookie,
    session_middleware,
    sign_session_id,
    utc_now,
    verify_session_token,
)

from .conftest import SECRET, START

KEYS = Keyring.from_secrets(SECRET)
NAME = "sid"
COOKIE = CookieSettings(name=NAME)
TOKEN = sign_session_id(new_session_id(), KEYS, now=START)
MIB = 1 << 20

# Cookie names, and values as clients send them (quotes, '=' and spaces included).
names = st.text("abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=8)
values = st.text('abcXYZ019-_=."', max_size=12).map(lambda v: v.strip(" \t"))


def test_quotes_are_kept_so_only_the_bare_token_verifies() -> None:
    spellings = [f'"{TOKEN}"', f'"{TOKEN}', f'{TOKEN}"', f"'{TOKEN}'"]
    for spelling in spellings:
        value = parse_cookie(f"a=1; {NAME}={spelling}; b=2", NAME)
        assert value is not None
        assert value == spelling
        assert isinstance(verify_session_token(value, KEYS, now=START), Err), spelling
    bare = parse_cookie(f"a=1; {NAME}= {TOKEN}\t; b=2", NAME)  # RFC 6265 whitespace only
    assert bare is not None
    assert bare == TOKEN
    assert isinstance(verify_session_token(bare, KEYS, now=START), Ok)


def test_a_hostile_megabyte_header_is_parsed_in_one_pass() -> None:
    """Many ';' and '=' and the name again and again: the first real pair still wins.
    (A quadratic parser would take hours here; this one reads the header once.)"""
    noise = ";=" * (MIB // 4) + f"{NAME};" * (MIB // 16) + "==;" * (MIB // 6)
    assert len(noise) >= MIB
    assert parse_cookie(noise, NAME) is None
    assert parse_cookie(noise + f";{NAME}={TOKEN}", NAME) == TOKEN
    assert parse_cookie(f"{NAME}=" + "=" * MIB, NAME) == "=" * MIB  # as sent, then refused:
    assert verify_session_token("=" * MIB, KEYS, now=START) == Err(TokenError.MALFORMED)


def test_a_value_longer_than_any_token_is_refused_before_parsing() -> None:
    for length in (TOKEN_LENGTH + 1, MIB):
        token = TOKEN + "A" * (length - TOKEN_LENGTH)
        assert verify_session_token(token, KEYS, now=START) == Err(TokenError.MALFORMED)


@given(st.lists(st.tuples(names, values), max_size=6), names, values)
def test_the_first_pair_of_the_name_comes_back_exactly_as_sent(
    others: list[tuple[str, str]], name: str, value: str
) -> None:
    pairs = [*others, (name, value)]
    first = next(val for key, val in pairs if key == name)
    for separator in (";", "; ", " ;\t"):
        header = separator.join(f"{key}={val}" for key, val in pairs)
        assert parse_cookie(header, name) == first


@given(st.text(st.sampled_from(';= "\tsid'), max_size=200), names)
def test_the_value_found_is_part_of_the_header(header: str, name: str) -> None:
    found = parse_cookie(header, name)
    assert found is None or (found in header and found == found.strip(" \t"))


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncGenerator[httpx.AsyncClient, None]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


@pytest.mark.anyio
async def test_a_quoted_cookie_is_refused_by_the_dependency_and_the_middleware() -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    dependency = make_cookie_dependency(store, lambda s: True, keys=KEYS, cookie=COOKIE)
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS, cookie=COOKIE)

    @app.get("/dependency")
    async def by_dependency(
        session: Annotated[Session[dict[str, Any]], Depends(dependency)],
    ) -> Any:
        return session.data

    @app.get("/middleware")
    async def by_middleware(request: Request) -> Any:
        return dict(request.state.session.get_session())

    async with _client(app) as client:
        now = utc_now()
        saved = await store.save(new_session({"user": "ada"}, Expiry(), now=now))
        assert isinstance(saved, Ok)
        token = sign_session_id(saved.value.id, KEYS, now=now)
        for spelling, status, data in (
            (token, 200, {"user": "ada"}),
            (f'"{token}"', 401, None),
            (f'"{token}', 401, None),
        ):
            headers = {"cookie": f"{NAME}={spelling}"}
            response = await client.get("/dependency", headers=headers)
            assert response.status_code == status, spelling
            if data is not None:
                assert response.json() == data
            seen = (await client.get("/middleware", headers=headers)).json()
            assert seen == (data or {}), spelling
