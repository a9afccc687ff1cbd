"""What ``request.state.session`` holds for a request that carried the skip header."""

from __future__ import annotations

from typing import NoReturn

from typed_sessions.adapters.errors import SessionSkippedError

__all__ = ["SkippedSession"]


class SkippedSession:
    """The session of a request that carried the skip header: it has none.

    Every method raises :class:`SessionSkippedError`; the middleware answers 400 when a
    handler lets it escape.
    """

    __slots__ = ()

    @staticmethod
    def error() -> SessionSkippedError:
        """The error every method raises."""
        return SessionSkippedError(
            "this request carried the skip header, so it has no session; do not send the "
            "skip header to routes that use the session"
        )

    def get_session(self) -> NoReturn:
        """Raise :class:`SessionSkippedError`."""
        raise self.error()

    def get_session_id(self) -> NoReturn:
        """Raise :class:`SessionSkippedError`."""
        raise self.error()

    def start(self) -> NoReturn:
        """Raise :class:`SessionSkippedError`."""
        raise self.error()

    def regenerate(self) -> NoReturn:
        """Raise :class:`SessionSkippedError`."""
        raise self.error()

    def sign_in(self, subject: str) -> NoReturn:
        """Raise :class:`SessionSkippedError`."""
        raise self.error()

    def invalidate(self) -> NoReturn:
        """Raise :class:`SessionSkippedError`."""
        raise self.error()

    async def load(self) -> NoReturn:
        """Raise :class:`SessionSkippedError`."""
        raise self.error()

    @property
    def loaded(self) -> bool:
        """Always ``False``."""
        return False
