"""A route that returns a ``Session[...]`` never sends the raw session ID: pydantic leaves
``id`` out of a record's JSON, while a store still keeps it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json

from typed_sessions import MemoryStore, Ok, Session, SessionCodec, make_cookie_dependency

from .conftest import SECRET

pytestmark = pytest.mark.anyio
BASE = "https://testserver"


class Profile(BaseModel):
    user: str


class Page(BaseModel):
    title: str
    session: Session[Profile]


def build() -> tuple[FastAPI, MemoryStore[Profile]]:
    store: MemoryStore[Profile] = MemoryStore(Profile)
    current = make_cookie_dependency(store, lambda s: True, keys=SECRET)
    app = FastAPI()

    @app.post("/login")
    async def login(response: Response) -> str:
        session = await current.start(response, Profile(user="ada"))
        return session.id  # the test needs it; a real app never sends it

    @app.get("/declared")
    async def declared(session: Session[Profile] = Depends(current)) -> Session[Profile]:  # noqa: B008
        return session

    @app.get("/model", response_model=Session[Profile])
    async def model(session: Session[Profile] = Depends(current)) -> Any:  # noqa: B008
        return session

    @app.get("/nested")
    async def nested(session: Session[Profile] = Depends(current)) -> Page:  # noqa: B008
        return Page(title="home", session=session)

    @app.get("/in-a-dict")
    async def in_a_dict(session: Session[Profile] = Depends(current)) -> dict[str, Any]:  # noqa: B008
        return {"title": "home", "session": session}  # pydantic meets it as Any

    @app.get("/in-a-list", response_model=list[Any])
    async def in_a_list(session: Session[Profile] = Depends(current)) -> Any:  # noqa: B008
        return [session]

    return app, store


@pytest.mark.parametrize("path", ["/declared", "/model", "/nested", "/in-a-dict", "/in-a-list"])
async def test_a_returned_session_carries_no_id(path: str) -> None:
    app, store = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        session_id = (await client.post("/login")).json()
        token = client.cookies["__Host-session"]
        answer = await client.get(path)
    assert answer.status_code == 200
    assert session_id not in answer.text
    assert token not in answer.text
    assert '"id"' not in answer.text
    assert "ada" in answer.text  # the rest of the record is there
    stored = await store.load(session_id)  # the store still names the session
    assert stored is not None
    assert stored.id == session_id


def test_the_openapi_schema_names_no_id() -> None:
    app, _ = build()
    schemas = app.openapi()["components"]["schemas"]
    sessions = {name: schema for name, schema in schemas.items() if name.startswith("Session")}
    assert sessions  # the response models are documented
    for schema in sessions.values():
        assert "id" not in schema["properties"]


def decoded(codec: SessionCodec[dict[str, Any]], raw: bytes) -> Session[dict[str, Any]]:
    result = codec.decode(raw)
    assert isinstance(result, Ok)
    return result.value


def test_pydantic_leaves_the_id_out_and_the_codec_keeps_it() -> None:
    codec = SessionCodec(dict[str, Any])
    record = decoded(
        codec,
        b'{"id":"abc","data":{"n":1},"created_at":"2026-01-01T00:00:00Z",'
        b'"last_active":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T01:00:00Z"}',
    )
    dumped = TypeAdapter(Session[dict[str, Any]]).dump_python(record, mode="json")
    assert "id" not in dumped
    assert dumped["data"] == {"n": 1}
    encoded = codec.encode(record)
    assert encoded.startswith(b'{"id":"abc","data":{"n":1},')
    assert decoded(codec, encoded) == record


def test_an_id_that_needs_escaping_round_trips() -> None:
    codec = SessionCodec(dict[str, Any])
    record = decoded(
        codec,
        b'{"id":"a\\"b\\\\c","data":{},"created_at":"2026-01-01T00:00:00Z",'
        b'"last_active":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T01:00:00Z"}',
    )
    assert record.id == 'a"b\\c'
    assert decoded(codec, codec.encode(record)) == record


def test_a_record_serialized_as_anything_has_no_id() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    record: Session[dict[str, Any]] = Session("abc", {"n": 1}, moment, moment, moment)  # type: ignore[arg-type]  # a plain str as the ID
    for dumped in (to_json(record), to_json({"s": [record]}), TypeAdapter(Any).dump_json(record)):
        assert b"abc" not in dumped
        assert b'"n":1' in dumped
