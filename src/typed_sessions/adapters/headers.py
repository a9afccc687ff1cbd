"""The middleware's own ASGI messages: session headers on a response, and refusals."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pydantic_core import to_json
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

__all__ = ["Receiving", "lists", "refuse", "refuse_mapped", "session_headers", "vary_cookie"]


def session_headers(headers: Any, cookie: str | None, *, vary: bool) -> list[tuple[bytes, bytes]]:
    """The response headers plus ours: appended, never replacing the app's cookies."""
    out: list[tuple[bytes, bytes]] = list(headers)
    if vary:  # Cookie added to the first Vary header (or a new one), unless one lists it
        first = -1  # (or *) already: one pass over the headers
        for index, (name, value) in enumerate(out):
            if name.lower() == b"vary":
                if lists(value, _VARY_SATISFIED):
                    break
                if first < 0:
                    first = index
        else:
            if first < 0:
                out.append((b"vary", b"Cookie"))
            else:
                name, value = out[first]
                out[first] = (name, value + b", Cookie" if value.strip() else b"Cookie")
    if cookie is not None:
        out.append((b"set-cookie", cookie.encode("latin-1")))
        # A response that sets a session cookie must never be stored by a shared cache.
        if not _has_token(out, b"cache-control", (b"no-store",)):
            out = [(n, v) for n, v in out if n.lower() != b"cache-control"]
            out.append((b"cache-control", b"no-store"))
    elif vary and not any(name.lower() == b"cache-control" for name, _ in out):
        out.append(_PRIVATE)  # one user's page: no shared cache keeps it (the app may say)
    return out


def vary_cookie(headers: Any) -> list[tuple[bytes, bytes]]:
    """The response headers with ``Vary: Cookie`` and, unless the app set its own
    ``Cache-Control``, ``Cache-Control: private`` (:func:`session_headers` with no cookie)."""
    out: list[tuple[bytes, bytes]] = headers if type(headers) is list else list(headers)  # pyright: ignore[reportUnknownVariableType]
    for name, _ in out:
        name = name.lower()
        if name == b"vary" or name == b"cache-control":  # the app's own: merged with it
            return session_headers(out, None, vary=True)
    return [*out, _VARY_COOKIE, _PRIVATE]


_VARY_COOKIE: Final = (b"vary", b"Cookie")
_PRIVATE: Final = (b"cache-control", b"private")


def _has_token(headers: list[tuple[bytes, bytes]], field: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Whether a ``field`` header lists one of ``tokens`` (comma-separated, any case)."""
    return any(name.lower() == field and lists(value, tokens) for name, value in headers)


_VARY_SATISFIED: Final = (b"cookie", b"*")


def lists(value: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Whether a comma-separated header ``value`` lists one of ``tokens`` (any case)."""
    return any(item.split(b"=", 1)[0].strip().lower() in tokens for item in value.split(b","))


CLOSE_CODES: Final = {503: 1013, 409: 1013, 400: 1008}  # try again later; policy violation


def close_code(status: int) -> int:
    """The WebSocket close code for a refusal with HTTP ``status``: from
    :data:`CLOSE_CODES`, else 1013 (try again later) for a 5xx, 1008 (policy violation)
    for any other (an ``on_error`` mapping's own status, say)."""
    return CLOSE_CODES.get(status, 1013 if status >= 500 else 1008)


class Receiving:
    """``receive``, noting whether the app has taken the WebSocket's ``connect`` yet."""

    __slots__ = ("connected", "receive")

    def __init__(self, receive: Receive) -> None:
        self.receive: Receive = receive
        self.connected: bool = False

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "websocket.connect":
            self.connected = True
        return message


async def refuse_mapped(scope: Scope, receive: Receive, send: Send, answer: Exception) -> None:
    """Answer with what an error mapping gave: an ``HTTPException`` becomes its status,
    ``{"detail": ...}`` and headers; any other exception is raised (the app chose it)."""
    if not isinstance(answer, HTTPException):
        raise answer
    body = to_json({"detail": answer.detail})
    extra = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in (answer.headers or {}).items()
    ]
    await refuse(scope, receive, send, answer.status_code, body, json=True, extra=extra)


async def refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    body: bytes,
    *,
    json: bool = False,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer ``status`` with ``body`` (plain text, or JSON), before the app answered.

    A WebSocket gets the same status as a denial response where the server offers them
    (the ``websocket.http.response`` extension, as uvicorn and hypercorn do). Elsewhere it
    is accepted and closed at once with the matching close code (:func:`close_code`): a
    close before accepting would reach the client as a bare 403.
    """
    headers = [
        (b"content-type", b"application/json" if json else b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if "websocket.http.response" in scope.get("extensions", ()):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    connected = isinstance(receive, Receiving) and receive.connected
    if not connected and (await receive())["type"] != "websocket.connect":
        return  # the client left before the handshake
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": close_code(status), "reason": ""})
