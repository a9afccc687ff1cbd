"""The demo app: both adapters, one page, plain HTML forms."""

# No `from __future__ import annotations`: FastAPI must resolve the routes' annotations,
# which name dependencies local to create_app().

import hashlib
import html
import os
import secrets
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field, ValidationError

from typed_sessions.adapters.dependencies import make_cookie_dependency
from typed_sessions.adapters.lifecycle import end_session, rotate_session, start_session
from typed_sessions.adapters.middleware import SessionDep, session_middleware
from typed_sessions.adapters.responses import store_error_handler
from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.session import Session
from typed_sessions.core.signing import Keyring
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import SessionStore, StoreError

if TYPE_CHECKING:
    from typed_sessions.stores.sql import SqlStore

__all__ = ["User", "create_app", "demo_stores", "serve"]


class User(BaseModel):
    """Who is signed in."""

    name: str = Field(min_length=1, max_length=40)


def _admit(session: Session[User]) -> bool:
    return True


def _same_origin(request: Request) -> None:
    """Refuse a form posted from another site (CSRF): browsers send ``Origin`` with every
    POST. SameSite=Lax alone would let a cross-site form sign a visitor in as someone
    else, or clear their cookie, since neither needs the cookie."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(403, "cross-site request refused")


def create_app(
    *,
    secret: str | None = None,
    users: SessionStore[User] | None = None,
    visits: SessionStore[dict[str, Any]] | None = None,
) -> FastAPI:
    """Build the demo app. It serves plain HTTP on loopback, so its cookies are not Secure."""
    secret = secret or os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
    users = users if users is not None else MemoryStore(User)
    visits = visits if visits is not None else MemoryStore(dict[str, Any])
    keys = Keyring.from_secrets(secret, purpose="demo-login")
    cookie = CookieSettings(name="demo_login", secure=False)
    current_user = make_cookie_dependency(users, _admit, keys=keys, cookie=cookie)
    maybe_user = make_cookie_dependency(users, _admit, keys=keys, cookie=cookie, auto_error=False)

    app = FastAPI(title="typed-sessions demo")
    app.add_exception_handler(StoreError, store_error_handler)
    app.add_middleware(
        session_middleware,
        store=visits,
        keys=Keyring.from_secrets(secret, purpose="demo-visits"),
        cookie_name="demo_visits",
        secure=False,
    )

    @app.get("/", response_class=HTMLResponse)
    async def home(
        user: Annotated[Session[User] | None, Depends(maybe_user)], visit: SessionDep
    ) -> str:
        counter = visit.get_session()
        counter["visits"] = counter.get("visits", 0) + 1
        return _page(user, counter["visits"])

    @app.post("/login", dependencies=[Depends(_same_origin)])
    async def login(
        request: Request, user: Annotated[Session[User] | None, Depends(maybe_user)]
    ) -> RedirectResponse:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        try:
            who = User(name=form.get("name", [""])[0].strip())
        except ValidationError:
            return RedirectResponse("/?error=name", status_code=303)
        response = RedirectResponse("/", status_code=303)
        if user is not None:  # signed in already: the old ID must die (fixation defence)
            await users.delete(user.id)
        await start_session(response, users, who, keys=keys, cookie=cookie)
        return response

    @app.post("/rotate", dependencies=[Depends(_same_origin)])
    async def rotate(user: Annotated[Session[User], Depends(current_user)]) -> RedirectResponse:
        response = RedirectResponse("/", status_code=303)
        await rotate_session(response, users, user, keys=keys, cookie=cookie)
        return response

    @app.post("/logout", dependencies=[Depends(_same_origin)])
    async def logout(
        user: Annotated[Session[User] | None, Depends(maybe_user)],
    ) -> RedirectResponse:
        response = RedirectResponse("/", status_code=303)
        await end_session(response, users, user, cookie=cookie)
        return response

    return app


def _page(user: Session[User] | None, visits: int) -> str:
    if user is None:
        body = """
<p>You are not signed in.</p>
<form method="post" action="/login">
  <label>Name <input name="name" id="name" maxlength="40" required autofocus></label>
  <button id="login">Sign in</button>
</form>"""
    else:
        digest = hashlib.sha256(user.id.encode()).hexdigest()[:12]
        body = f"""
<p id="who">Signed in as <strong>{html.escape(user.data.name)}</strong>.</p>
<p>Session <code id="sid">{digest}</code> (a hash: the ID itself never leaves the cookie),
expires at {user.expires_at:%H:%M:%S} UTC unless you come back sooner.</p>
<form method="post" action="/rotate"><button id="rotate">Rotate session ID</button></form>
<form method="post" action="/logout"><button id="logout">Sign out</button></form>"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>typed-sessions demo</title>
<style>body{{font:16px system-ui;max-width:40rem;margin:3rem auto}}form{{margin:.5rem 0}}</style>
</head><body>
<h1>typed-sessions demo</h1>{body}
<p id="visits">Visits in this browser (middleware session): {visits}</p>
</body></html>"""


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    redis_url: str | None = None,
    sql_url: str | None = None,
) -> int:
    """Run the demo with uvicorn until interrupted; returns the exit code."""
    import uvicorn  # the `demo` extra

    users, visits = demo_stores(redis_url=redis_url, sql_url=sql_url)
    print(f"typed-sessions demo on http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(create_app(users=users, visits=visits), host=host, port=port, log_level="warning")
    return 0


def demo_stores(
    *, redis_url: str | None = None, sql_url: str | None = None
) -> tuple[SessionStore[User] | None, SessionStore[dict[str, Any]] | None]:
    """The demo's two stores: in Redis at ``redis_url``, in the SQL database at
    ``sql_url`` (tables ``demo_users`` and ``demo_visits``, made if missing), or ``None``
    for memory. Call it outside any event loop."""
    if redis_url is not None and sql_url is not None:
        raise ValueError("use Redis or SQL, not both")
    if redis_url is not None:
        from typed_sessions.stores.redis import RedisStore

        return (
            RedisStore.from_url(redis_url, User, prefix="demo:users:"),
            RedisStore.from_url(redis_url, dict[str, Any], prefix="demo:visits:"),
        )
    if sql_url is not None:
        import asyncio

        from typed_sessions.stores.sql import SqlStore
        from typed_sessions.stores.sql_table import session_table

        users = SqlStore.from_url(sql_url, User, table=session_table(name="demo_users"))
        visits = SqlStore.from_url(sql_url, dict[str, Any], table=session_table(name="demo_visits"))
        asyncio.run(_create_tables(users, visits))
        return users, visits
    return None, None


async def _create_tables(*stores: "SqlStore[Any]") -> None:
    for store in stores:
        await store.create_table()
        await store.engine.dispose()  # its connections belong to this event loop
