"""The demo's "your sessions" page: each session of the signed-in user, with its device,
start and last activity, the current one marked; end one, or all others."""

# No `from __future__ import annotations`: FastAPI must resolve the routes' annotations.

import html
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from typed_sessions.adapters.dependencies import SessionDependency
from typed_sessions.core.session import Session
from typed_sessions.core.subjects import SessionInfo

__all__ = ["add_sessions_routes", "same_origin"]


async def same_origin(request: Request) -> None:
    """Refuse a form posted from another site (CSRF): browsers send ``Origin`` with every
    POST. SameSite=Lax alone would let a cross-site form sign a visitor in as someone
    else, or clear their cookie, since neither needs the cookie."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(403, "cross-site request refused")


def add_sessions_routes(app: FastAPI, current: SessionDependency[Any]) -> None:
    """``GET /sessions``, ``POST /sessions/{handle}/end`` and ``POST /sessions/end-others``."""

    @app.get("/sessions", response_class=HTMLResponse)
    async def sessions(session: Annotated[Session[Any], Depends(current)]) -> str:
        return _page(await current.sessions_of(session))

    @app.post("/sessions/end-others", dependencies=[Depends(same_origin)])
    async def end_others(session: Annotated[Session[Any], Depends(current)]) -> RedirectResponse:
        await current.end_others(session)
        return RedirectResponse("/sessions", status_code=303)

    @app.post("/sessions/{handle}/end", dependencies=[Depends(same_origin)])
    async def end_one(
        handle: str, session: Annotated[Session[Any], Depends(current)]
    ) -> RedirectResponse:
        await current.end_one(session, handle)
        return RedirectResponse("/sessions", status_code=303)


def _row(info: SessionInfo) -> str:
    device = html.escape(info.device.user_agent if info.device is not None else "unknown")
    mark = " <strong>(this one)</strong>" if info.current else ""
    end = (
        ""
        if info.current
        else f'<form method="post" action="/sessions/{html.escape(info.handle)}/end">'
        f'<button class="end">End</button></form>'
    )
    return (
        f'<tr class="session{" current" if info.current else ""}"><td>{device}{mark}</td>'
        f"<td>{info.created_at:%Y-%m-%d %H:%M:%S}</td>"
        f"<td>{info.last_active:%H:%M:%S}</td><td>{end}</td></tr>"
    )


def _page(infos: list[SessionInfo]) -> str:
    rows = "".join(_row(info) for info in infos)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your sessions</title>
<style>body{{font:16px system-ui;max-width:50rem;margin:3rem auto}}td{{padding:.3rem .8rem}}</style>
</head><body>
<h1>Your sessions</h1>
<table id="sessions"><tr><th>Device</th><th>Started (UTC)</th><th>Last active</th><th></th></tr>
{rows}</table>
<form method="post" action="/sessions/end-others">
<button id="end-others">Sign out everywhere else</button></form>
<p><a href="/">Back</a></p>
</body></html>"""
