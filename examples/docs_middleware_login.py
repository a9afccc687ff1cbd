"""Signing in and out with the middleware: regenerate() at login, invalidate() at logout.

Run: ``SESSION_SECRET=... uvicorn examples.docs_middleware_login:app`` (over HTTPS, or
on localhost: the cookie is ``Secure``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from typed_sessions import Keyring, MemoryStore, SessionDep, secret_from_env, session_middleware


def create_app(secret: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        session_middleware,
        store=MemoryStore(dict[str, Any]),
        keys=Keyring.from_secrets(secret),
    )

    @app.post("/cart/{item}")
    async def add_to_cart(item: str, session: SessionDep) -> dict[str, Any]:
        data = session.get_session()
        data["cart"] = [*data.get("cart", []), item]
        return dict(data)

    @app.post("/login/{name}")
    async def login(name: str, session: SessionDep) -> dict[str, Any]:
        # ... check the password first ...
        session.regenerate()  # a new ID for the signed-in user; the cart comes along
        data = session.get_session()
        data["user"] = name
        return dict(data)

    @app.get("/me")
    async def me(session: SessionDep) -> dict[str, Any]:
        return dict(session.get_session())

    @app.post("/logout")
    async def logout(session: SessionDep) -> dict[str, Any]:
        session.invalidate()  # record deleted, cookie cleared
        data = session.get_session()
        data["flash"] = "You are signed out."  # optional: starts a new, anonymous session
        return dict(data)

    return app


app = create_app(secret_from_env("SESSION_SECRET"))  # no public default
