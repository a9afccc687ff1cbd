"""core/ids.py: session IDs and their loggable digest."""

from __future__ import annotations

from typed_sessions.core.ids import id_digest


def test_id_digest_is_short_and_not_the_id() -> None:
    digest = id_digest("some-session-id")
    assert len(digest) == 12
    assert "some" not in digest
    assert digest == id_digest("some-session-id")
