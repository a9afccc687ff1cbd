"""The demo app: both adapters, one page, plain HTML forms."""

# No `from __future__ import annotations`: FastAPI must resolve the routes' annotations,
# which name dependencies local to create_app().

import hashlib
import html
import logging
import os
import secrets
import sys
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from typed_sessions.adapters.dependencies import (
    OptionalSessionDependency,
    SessionDependency,
    make_cookie_dependency,
)
from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.adapters.responses import store_error_handler
from typed_sessions.adapters.session_deps import SessionDep
from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.session import Session
from typed_sessions.core.signing import Keyring
from typed_sessions.core.subjects import check_subject
from typed_sessions.demo.sessions_page import add_sessions_routes, same_origin
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import SessionStore, StoreError

if TYPE_CHECKING:
    from typed_sessions.stores.sql import SqlStore

__all__ = ["SESSIONS_PER_USER", "User", "create_app", "demo_stores", "serve"]

SESSIONS_PER_USER: Final = 10
"""A name's live sign-ins the demo keeps: signing in once more ends its oldest. Anyone
may sign in as any name here, so without a bound one name's list (and the page that
shows it) could be made as long as the store is large."""


class User(BaseModel):
    """Who is signed in."""

    name: Annotated[str, Field(min_length=1, max_length=40), AfterValidator(check_subject)]
    """Also the subject of the sign-in: no control or format characters."""


def _admit(session: Session[User]) -> bool:
    return True


def _throwaway_secret() -> str:
    """A random secret for this process, said loudly: never a public default."""
    logging.getLogger("typed_sessions").warning(
        "typed-sessions demo: SESSION_SECRET is not set; signing cookies with a random "
        "secret for this process only (sign-ins end when it stops)"
    )
    return secrets.token_urlsafe(32)


def _env_secret() -> str | None:
    """``SESSION_SECRET``, unless unset or blank (as ``secret_from_env`` reads it)."""
    value = os.environ.get("SESSION_SECRET", "")
    return value if value.strip() else None


def create_app(
    *,
    secret: str | None = None,
    users: SessionStore[User] | None = None,
    visits: SessionStore[dict[str, Any]] | None = None,
) -> FastAPI:
    """Build the demo app. It serves plain HTTP on loopback, so its cookies are not Secure."""
    secret = secret or _env_secret() or _throwaway_secret()
    current_user = make_cookie_dependency(
        users if users is not None else MemoryStore(User, max_per_subject=SESSIONS_PER_USER),
        _admit,
        keys=Keyring.from_secrets(secret, purpose="demo-login"),
        cookie=CookieSettings(name="demo_login", secure=False),
    )
    maybe_user = current_user.optional()
    app = _app_with_visits(secret, visits)
    add_sessions_routes(app, current_user)

    @app.get("/", response_class=HTMLResponse)
    async def home(
        user: Annotated[Session[User] | None, Depends(maybe_user)], visit: SessionDep
    ) -> str:
        counter = visit.get_session()
        counter["visits"] = counter.get("visits", 0) + 1
        return _page(user, counter["visits"])

    _add_login_routes(app, current_user, maybe_user)
    return app


def _add_login_routes(
    app: FastAPI,
    current_user: SessionDependency[User],
    maybe_user: OptionalSessionDependency[User],
) -> None:
    """``/login``, ``/rotate`` and ``/logout``: forms that start, move and end a login."""

    @app.post("/login", dependencies=[Depends(same_origin)])
    async def login(
        request: Request, user: Annotated[Session[User] | None, Depends(maybe_user)]
    ) -> RedirectResponse:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        try:
            who = User(name=form.get("name", [""])[0].strip())
        except ValidationError:
            return RedirectResponse("/?error=name", status_code=303)
        response = RedirectResponse("/", status_code=303)
        if user is not None:  # signed in already: a new ID (fixation defence), new subject
            await current_user.rotate(response, user, update=lambda _: who, signed_in=who.name)
        else:
            await current_user.start(response, who, subject=who.name, request=request)
        return response

    @app.post("/rotate", dependencies=[Depends(same_origin)])
    async def rotate(user: Annotated[Session[User], Depends(current_user)]) -> RedirectResponse:
        response = RedirectResponse("/", status_code=303)
        await current_user.rotate(response, user)
        return response

    @app.post("/logout", dependencies=[Depends(same_origin)])
    async def logout(
        user: Annotated[Session[User] | None, Depends(maybe_user)],
    ) -> RedirectResponse:
        response = RedirectResponse("/", status_code=303)
        await current_user.end(response, user)
        return response


def _app_with_visits(secret: str, visits: SessionStore[dict[str, Any]] | None) -> FastAPI:
    """The app, its 503 for store failures, the middleware counting visits, ``/count``."""
    app = FastAPI(title="typed-sessions demo")
    app.add_exception_handler(StoreError, store_error_handler)
    app.add_middleware(
        session_middleware,
        store=visits if visits is not None else MemoryStore(dict[str, Any]),
        keys=Keyring.from_secrets(secret, purpose="demo-visits"),
        cookie=CookieSettings(name="demo_visits", secure=False),
    )
    _add_counter_routes(app)
    return app


def _add_counter_routes(app: FastAPI) -> None:
    """``/count``: a counter in the middleware's session, for the 20-at-once button."""

    @app.post("/count", dependencies=[Depends(same_origin)])
    async def count(visit: SessionDep) -> dict[str, int]:
        clicks = visit.get_session()
        clicks["clicks"] = clicks.get("clicks", 0) + 1  # read, then write: 409 if stale
        return {"clicks": clicks["clicks"]}

    @app.get("/count")
    async def stored(visit: SessionDep) -> dict[str, int]:
        return {"clicks": visit.get_session().get("clicks", 0)}


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
<p><a id="sessions-link" href="/sessions">Your sessions</a> (devices, sign out elsewhere)</p>
<form method="post" action="/rotate"><button id="rotate">Rotate session ID</button></form>
<form method="post" action="/logout"><button id="logout">Sign out</button></form>"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>typed-sessions demo</title>
<style>body{{font:16px system-ui;max-width:40rem;margin:3rem auto}}form{{margin:.5rem 0}}</style>
</head><body>
<h1>typed-sessions demo</h1>{body}
<p id="visits">Visits in this browser (middleware session): {visits}</p>
<h2>No lost updates</h2>
<p>Twenty increments of one counter in this session, sent at once. Each is counted and
answered 200, or refused with 409 because another increment changed the counter first:
never answered 200 and then lost.</p>
<button id="burst">Send 20 increments at once</button>
<p id="burst-result"></p>
<script>
document.getElementById("burst").onclick = async () => {{
  const before = (await (await fetch("/count")).json()).clicks;
  const answers = await Promise.all(
    Array.from({{length: 20}}, () => fetch("/count", {{method: "POST"}})));
  const acked = answers.filter(r => r.status === 200).length;
  const refused = answers.filter(r => r.status === 409).length;
  const after = (await (await fetch("/count")).json()).clicks;
  document.getElementById("burst-result").innerHTML =
    `<span id="acked">${{acked}}</span> acknowledged, <span id="refused">${{refused}}</span>` +
    ` refused; stored: <span id="stored">${{after - before}}</span> more than before`;
}};
</script>
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

    try:
        users, visits = demo_stores(redis_url=redis_url, sql_url=sql_url)
    except StoreError as exc:  # its message holds no password
        print(f"typed-sessions demo: the database is unavailable: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the client library refused the URL (its message may quote it)
        if redis_url is not None:  # RedisStore.from_url's ValueError never quotes the URL
            detail = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
            print(f"typed-sessions demo: invalid --redis URL: {detail}", file=sys.stderr)
        else:
            print(
                f"typed-sessions demo: invalid --sql URL ({type(exc).__name__}): use an async "
                "driver, e.g. sqlite+aiosqlite:///demo.db",
                file=sys.stderr,
            )
        return 2
    print(f"typed-sessions demo on http://{host}:{port}/ (Ctrl+C to stop)")
    if _env_secret() is None:
        print("SESSION_SECRET is not set: cookies are signed with a random secret for this run")
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
            RedisStore.from_url(
                redis_url, User, prefix="demo:users:", max_per_subject=SESSIONS_PER_USER
            ),
            RedisStore.from_url(redis_url, dict[str, Any], prefix="demo:visits:"),
        )
    if sql_url is not None:
        import asyncio

        from typed_sessions.stores.sql import SqlStore
        from typed_sessions.stores.sql_table import session_table

        users = SqlStore.from_url(
            sql_url, User, table=session_table(name="demo_users"), max_per_subject=SESSIONS_PER_USER
        )
        visits = SqlStore.from_url(sql_url, dict[str, Any], table=session_table(name="demo_visits"))
        asyncio.run(_create_tables(users, visits))
        return users, visits
    return None, None


async def _create_tables(*stores: "SqlStore[Any]") -> None:
    for store in stores:
        await store.create_table()
        await store.engine.dispose()  # its connections belong to this event loop
