"""Sign a session ID and verify it, with nothing but the pure core.

Run: ``python examples/signing_quickstart.py``
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from typed_sessions import (
    Err,
    Keyring,
    Ok,
    new_session_id,
    sign_session_id,
    verify_session_token,
)


def main() -> list[str]:
    """Sign, verify, tamper and expire one token; return what happened, line by line."""
    # A throwaway secret: tokens live only in this run. An app reads its secret from the
    # environment (typed_sessions.secret_from_env), never from its source.
    keyring = Keyring.from_secrets(secrets.token_urlsafe(32))
    now = datetime.now(UTC)
    session_id = new_session_id()
    token = sign_session_id(session_id, keyring, now=now)
    lines = [f"token: {token}"]
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    later = now + timedelta(hours=2)
    for label, candidate, at in [
        ("fresh", token, now),
        ("tampered", tampered, now),
        ("two hours later", token, later),
    ]:
        match verify_session_token(candidate, keyring, now=at, max_age=timedelta(hours=1)):
            case Ok(verified):
                lines.append(f"{label}: ok, same id: {verified == session_id}")
            case Err(error):
                lines.append(f"{label}: refused ({error})")
    return lines


if __name__ == "__main__":
    print("\n".join(main()))
