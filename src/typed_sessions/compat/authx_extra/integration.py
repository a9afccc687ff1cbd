"""The object on ``request.state.session``: authx-extra's ``SessionIntegration``, over ours.

Its methods answer at once, as on authx-extra's page (``manager.get_session()``), and
what they return can also be awaited, as authx-extra 1.2's coroutines were
(``await manager.get_session()``), so code of either style runs unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterator, MutableMapping
from typing import Any, Final, NoReturn, Self

from typed_sessions import (
    SessionClosedError,
    SessionData,
    SessionManager,
    WebSocketSessionError,
)
from typed_sessions.adapters.skipped import SkippedSession

__all__ = [
    "DONE",
    "SKIPPED",
    "Done",
    "SessionHandle",
    "SessionIntegration",
    "SessionView",
    "SkippedIntegration",
]


class Done:
    """What ``save_session()`` and ``clear_session()`` return: nothing, or an awaitable
    of nothing, whichever the caller expects."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


DONE: Final = Done()


class SessionHandle(str):
    """``get_session_id()``'s answer: a label of the session, not its ID.

    32 hex digits of the ID's SHA-256 (its first 12 are the ``sid#`` digest of
    typed-sessions' log lines): stable for the session's life, safe to print or log, and
    no use to anyone who reads it. Empty (``""``) where no session can be started: on
    a WebSocket without one, after the response started without one, after the sign-out
    of a stored session in this request. It is also awaitable, as authx-extra 1.2's was.
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, Self]:
        yield from ()
        return self


_NO_SESSION: Final = SessionHandle()


class SessionView(MutableMapping[str, Any]):
    """``get_session()``'s answer: the request's session (a dict of JSON values).

    Reads and writes go to the typed-sessions session, which saves changes when the
    response starts. It can be awaited too (yielding itself), as with authx-extra 1.2.
    """

    __slots__ = ("_data",)

    def __init__(self, data: SessionData) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return f"SessionView({self._data!r})"

    def clear(self) -> None:
        """Remove every key (the session keeps its ID)."""
        self._data.clear()

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` copy of the session."""
        return dict(self._data)

    def __await__(self) -> Generator[Any, None, Self]:
        yield from ()
        return self


class SessionIntegration:
    """authx-extra's session manager API over typed-sessions' :class:`SessionManager`.

    ``native`` is the typed-sessions manager itself (``regenerate()`` after a login,
    ``invalidate()`` at logout), the object ``SessionDep`` gives handlers.
    """

    __slots__ = ("native",)

    def __init__(self, native: SessionManager) -> None:
        self.native: SessionManager = native

    def get_session(self) -> SessionView:
        """The session: a mutable mapping, saved when the response starts if changed."""
        return SessionView(self.native.get_session())

    def get_session_id(self) -> SessionHandle:
        """A printable label of the session (:class:`SessionHandle`). A visitor without
        one gets a session now, as authx-extra gave every visitor one (stored with its
        cookie when the response starts): what an app keys on the label is theirs alone."""
        native = self.native
        try:  # (not after a sign-out in this request: that one's label is "")
            session_id = native.get_session_id() if native.invalidated else native.start()
        except (SessionClosedError, WebSocketSessionError):  # none can start: as it is
            session_id = native.get_session_id()
        if session_id is None:
            return _NO_SESSION
        return SessionHandle(hashlib.sha256(session_id.encode()).hexdigest()[:32])

    def save_session(self) -> Done:
        """Nothing to do: the session is saved when the response starts, if it changed."""
        return DONE

    def clear_session(self) -> Done:
        """Empty the session, keeping its ID (``native.invalidate()`` ends it instead)."""
        self.native.get_session().clear()
        return DONE


class SkippedIntegration(SkippedSession):
    """authx-extra's manager API for a request that carried the skip header: every method,
    ``save_session()`` and ``clear_session()`` included, raises ``SessionSkippedError``
    (answered with 400 if not caught)."""

    __slots__ = ()

    def save_session(self) -> NoReturn:
        """Raise ``SessionSkippedError``."""
        raise self.error()

    def clear_session(self) -> NoReturn:
        """Raise ``SessionSkippedError``."""
        raise self.error()


SKIPPED: Final = SkippedIntegration()
"""The one :class:`SkippedIntegration` (it holds nothing)."""
