"""What the end of a request does to its session: the manager's answer to the driver.

:meth:`SessionManager.outcome <typed_sessions.SessionManager.outcome>` computes an
:class:`Outcome` from the request's session state (pure: no I/O); the middleware carries
it out with :func:`typed_sessions.adapters.commit.carry_out`, the only place that writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from typed_sessions.core.ids import SessionId
from typed_sessions.core.session import Session

__all__ = ["Create", "Outcome", "Regenerate", "Touch", "Update", "Write"]

Record: TypeAlias = Session[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Create:
    """Save ``data`` as a new session (under ``session_id``, or a fresh ID) and set its cookie."""

    session_id: SessionId | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Update:
    """Save the changed ``data`` of ``record``; ``before`` is the JSON the request read,
    from which its own changes are found when another request saved first."""

    record: Record
    data: dict[str, Any]
    before: str


@dataclass(frozen=True, slots=True)
class Regenerate:
    """Move ``record`` to ``new_id`` (with the request's ``data``, if it read any, and the
    JSON it read as ``before``), end the old record and set the new cookie."""

    record: Record
    new_id: SessionId
    data: dict[str, Any] | None
    before: str | None


@dataclass(frozen=True, slots=True)
class Touch:
    """Save ``record``, whose idle deadline moved; lost to a concurrent save, it is dropped
    (that save slid the deadline too)."""

    record: Record


Write: TypeAlias = Create | Update | Regenerate | Touch
"""One write of a session record."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do when the response starts, in this order: delete ``delete`` (an
    invalidated record), do ``write``, then send the new cookie, or a clearing one when
    ``clear_cookie``; add ``Vary: Cookie`` when ``vary``. ``now`` is the request's time."""

    write: Write | None
    delete: SessionId | None
    clear_cookie: bool
    vary: bool
    now: datetime

    @property
    def acts(self) -> bool:
        """Whether carrying it out writes, deletes or sends a cookie."""
        return self.write is not None or self.delete is not None or self.clear_cookie
