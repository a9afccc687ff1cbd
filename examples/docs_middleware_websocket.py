"""A WebSocket reads the session an HTTP request started, and may change it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, WebSocket

from typed_sessions import Keyring, SessionDep, SessionStore, session_middleware


def create_app(store: SessionStore[dict[str, Any]], keys: Keyring) -> FastAPI:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keys)

    @app.post("/login/{name}")
    async def login(name: str, session: SessionDep) -> dict[str, str]:
        session.regenerate()
        session.get_session()["user"] = name
        return {"user": name}

    @app.websocket("/ws")
    async def chat(websocket: WebSocket, session: SessionDep) -> None:
        await websocket.accept()
        data = session.get_session()
        if "user" not in data:  # no session: a WebSocket cannot start one
            await websocket.close(code=1008)
            return
        await websocket.send_json({"hello": data["user"]})
        data["messages"] = data.get("messages", 0) + 1  # saved when the endpoint returns
        await websocket.close()

    return app
