"""The dependency's cache of request headers whose token verified: the same answers as
the full path, the token's age checked at every use, the store read every time, and
nothing kept for a header that does not verify."""

# pyright: reportPrivateUsage=false
# (the tests look inside the cache: which headers it holds, not only the answers)

# No `from __future__ import annotations`: FastAPI must resolve the routes' annotations.

from datetime import timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from tests.conftest import SECRET, START, FakeClock
from typed_sessions import (
    Expiry,
    Keyring,
    MemoryStore,
    Session,
    issue_session,
    make_cookie_dependency,
    make_header_dependency,
)
from typed_sessions.adapters import scheme
from typed_sessions.core.cookies import parse_cookie
from typed_sessions.core.keyring import SEEN_HEADERS

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
COOKIE = "__Host-session"
Data = dict[str, Any]


def whoami_app(dependency: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/whoami")
    async def whoami(session: Annotated[Session[Data], Depends(dependency)]) -> Data:
        return session.data

    return app


async def get(app: FastAPI, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        return await client.get("/whoami", headers=headers)


async def test_a_verified_cookie_header_is_parsed_once_and_still_read_from_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock(START)
    store = MemoryStore(Data, clock=clock)
    keys = Keyring.from_secrets(SECRET)
    current = make_cookie_dependency(store, lambda s: True, keys=keys, expiry=EXPIRY, clock=clock)
    app = whoami_app(current)
    issued = await issue_session(store, {"user": "ada"}, keys=keys, expiry=EXPIRY, clock=clock)
    headers = {"cookie": f"theme=dark; {COOKIE}={issued.token}"}
    parsed: list[str] = []

    def counting(header: str, name: str) -> str | None:
        parsed.append(header)
        return parse_cookie(header, name)

    monkeypatch.setattr(scheme, "parse_cookie", counting)
    for _ in range(3):
        answer = await get(app, headers)
        assert (answer.status_code, answer.json()) == (200, {"user": "ada"})
    assert len(parsed) == 1
    assert len(current._seen) == 1
    await store.delete(issued.session.id)  # ended: the store still decides at once
    assert (await get(app, headers)).status_code == 401


async def test_a_remembered_header_still_expires_by_its_tokens_age() -> None:
    clock = FakeClock(START)
    store = MemoryStore(Data, clock=clock)
    keys = Keyring.from_secrets(SECRET)
    long = Expiry(idle=timedelta(days=2), absolute=timedelta(hours=2))  # the age decides
    current = make_header_dependency(store, lambda s: True, keys=keys, expiry=long, clock=clock)
    app = whoami_app(current)
    issued = await issue_session(store, {"user": "ada"}, keys=keys, expiry=long, clock=clock)
    headers = {"x-session": issued.token}
    assert (await get(app, headers)).status_code == 200
    assert len(current._seen) == 1
    clock.advance(long.absolute + timedelta(seconds=1))
    answer = await get(app, headers)
    assert answer.status_code == 401
    assert not current._seen  # a header that stopped verifying is forgotten


async def test_refused_headers_are_never_remembered_and_the_cache_is_bounded() -> None:
    store = MemoryStore(Data)
    keys = Keyring.from_secrets(SECRET)
    current = make_cookie_dependency(store, lambda s: True, keys=keys)
    app = whoami_app(current)
    issued = await issue_session(store, {"user": "ada"}, keys=keys)
    tampered = issued.token[:-1] + ("0" if issued.token[-1] != "0" else "1")
    for cookie in (f"{COOKIE}={tampered}", "theme=dark", f"{COOKIE}=", f'{COOKIE}="x"'):
        assert (await get(app, {"cookie": cookie})).status_code == 401
    assert not current._seen
    for n in range(SEEN_HEADERS + 10):  # as many distinct headers, each verifying
        answer = await current._authenticate(f"n={n}; {COOKIE}={issued.token}".encode())
        assert answer.data == {"user": "ada"}  # type: ignore[union-attr]
    assert len(current._seen) <= SEEN_HEADERS
