"""Idle and absolute expiry, with throttled sliding, as pure functions.

Run: ``python examples/expiry_policy.py``
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typed_sessions import Expiry, is_expired, new_session, touch_session

expiry = Expiry(
    idle=timedelta(minutes=30),  # ends after 30 minutes without a request
    absolute=timedelta(hours=8),  # and 8 hours after login, however active
    touch_step=timedelta(minutes=1),  # slide (and save) at most once a minute
)


def main() -> list[str]:
    """Walk one session through a working day; return what happened."""
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    session = new_session({"user": "ada"}, expiry, now=start)
    log = [f"created, expires {session.expires_at:%H:%M}"]

    same = touch_session(session, expiry, now=start + timedelta(seconds=20))
    log.append(f"request after 20 s: save needed = {same is not session}")

    session = touch_session(session, expiry, now=start + timedelta(minutes=10))
    log.append(f"request after 10 min: expires {session.expires_at:%H:%M}")

    at = start + timedelta(minutes=10)
    while at < start + timedelta(hours=9):  # a request every 20 minutes all day
        at += timedelta(minutes=20)
        if is_expired(session, now=at):
            break
        session = touch_session(session, expiry, now=at)
    log.append(f"busy all day: ended {session.expires_at:%H:%M} (absolute), refused at {at:%H:%M}")
    return log


if __name__ == "__main__":
    print("\n".join(main()))
