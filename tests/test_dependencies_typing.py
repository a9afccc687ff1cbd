"""Static types of the dependencies and lifecycle helpers, checked by mypy and run by pytest.

``assert_type`` is a no-op at run time; mypy fails this file if an inferred type differs.
The ``type: ignore`` lines are checked too: mypy's ``warn_unused_ignores`` (strict) fails
if the mistake they mark stopped being an error.
"""

from typing import Annotated, assert_type

import pytest
from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel
from starlette.requests import Request

from typed_sessions.adapters.dependencies import (
    OptionalSessionDependency,
    SessionDependency,
    make_cookie_dependency,
    make_header_dependency,
)
from typed_sessions.adapters.lifecycle import (
    IssuedSession,
    end_session,
    issue_session,
    rotate_session,
    start_session,
)
from typed_sessions.core.session import Session
from typed_sessions.core.signing import Keyring
from typed_sessions.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio


class YourModel(BaseModel):
    username: str


class OtherModel(BaseModel):
    other: int


def verify(session: Session[YourModel]) -> bool:
    return session.data.username != ""


async def verify_async(session: Session[YourModel]) -> bool:
    return True


def verify_other(session: Session[OtherModel]) -> bool:
    return True


def request_with_cookie(value: str) -> Request:
    cookie = f"__Host-session={value}".encode()
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", cookie)]}
    return Request(scope)


async def test_the_dependency_yields_session_of_your_model(keyring: Keyring) -> None:
    store: MemoryStore[YourModel] = MemoryStore(YourModel)
    required = make_cookie_dependency(store, verify, keys=keyring)
    optional = make_cookie_dependency(store, verify_async, keys=keyring, auto_error=False)
    assert_type(required, SessionDependency[YourModel])
    assert_type(optional, OptionalSessionDependency[YourModel])

    response = Response()
    started = await start_session(response, store, YourModel(username="ada"), keys=keyring)
    assert_type(started, Session[YourModel])
    request = request_with_cookie(response.headers["set-cookie"].split(";")[0].split("=")[1])

    session = await required(request, Response())
    assert_type(session, Session[YourModel])
    assert_type(session.data, YourModel)
    wrong: Session[OtherModel] = await required(request, Response())  # type: ignore[assignment]
    assert wrong is not None
    maybe = await optional(request, Response())
    assert_type(maybe, Session[YourModel] | None)
    unchecked = maybe.data  # type: ignore[union-attr]  # None must be handled first
    assert unchecked is not None
    assert maybe is not None
    assert_type(maybe.data.username, str)
    assert await optional(request_with_cookie("junk"), Response()) is None

    rotated = await rotate_session(response, store, session, keys=keyring)
    assert_type(rotated, Session[YourModel] | None)  # None: it had ended meanwhile
    assert rotated is not None
    issued = await issue_session(store, YourModel(username="api"), keys=keyring)
    assert_type(issued, IssuedSession[YourModel])
    assert_type(issued.token, str)
    assert_type(await end_session(response, store, rotated), None)


def test_header_dependencies_and_a_runtime_flag(keyring: Keyring) -> None:
    store: MemoryStore[YourModel] = MemoryStore(YourModel)
    assert_type(make_header_dependency(store, verify, keys=keyring), SessionDependency[YourModel])
    assert_type(
        make_header_dependency(store, verify, keys=keyring, auto_error=False),
        OptionalSessionDependency[YourModel],
    )
    flag = bool(len(keyring.keys))
    assert_type(
        make_cookie_dependency(store, verify, keys=keyring, auto_error=flag),
        SessionDependency[YourModel] | OptionalSessionDependency[YourModel],
    )


def test_a_verifier_for_another_model_is_a_type_error(keyring: Keyring) -> None:
    store: MemoryStore[YourModel] = MemoryStore(YourModel)
    make_cookie_dependency(store, verify_other, keys=keyring)  # type: ignore[arg-type]


class Account(BaseModel):
    username: str


class Admin(Account):
    level: int = 1


def verify_account(session: Session[Account]) -> bool:
    return session.data.username != ""


def test_one_verifier_for_a_base_model_serves_its_subclasses(keyring: Keyring) -> None:
    """Session is covariant (frozen, read-only data): a Session[Admin] is a Session[Account]."""
    store: MemoryStore[Admin] = MemoryStore(Admin)
    assert_type(
        make_cookie_dependency(store, verify_account, keys=keyring), SessionDependency[Admin]
    )
    sessions: list[Session[Account]] = [store_record(Admin(username="ada"))]
    assert sessions[0].data.username == "ada"


def store_record(data: Admin) -> Session[Admin]:
    from typed_sessions import Expiry, new_session, utc_now

    return new_session(data, Expiry(), now=utc_now())


def test_annotated_parameters_in_routes(keyring: Keyring) -> None:
    store: MemoryStore[YourModel] = MemoryStore(YourModel)
    required = make_cookie_dependency(store, verify, keys=keyring)
    optional = make_cookie_dependency(store, verify, keys=keyring, auto_error=False)
    app = FastAPI()

    @app.get("/me")
    async def me(session: Annotated[Session[YourModel], Depends(required)]) -> YourModel:
        return session.data

    @app.get("/maybe")
    async def maybe(session: Annotated[Session[YourModel] | None, Depends(optional)]) -> str | None:
        return None if session is None else session.data.username

    assert {getattr(route, "path", "") for route in app.routes} >= {"/me", "/maybe"}
