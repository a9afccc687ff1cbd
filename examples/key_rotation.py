"""Rotate a signing secret without logging anybody out.

Run: ``python examples/key_rotation.py``
"""

from __future__ import annotations

from datetime import UTC, datetime

from typed_sessions import Keyring, Ok, new_session_id, sign_session_id, verify_session_token

OLD_SECRET = "old-secret-old-secret-old-secret-old-secret"
NEW_SECRET = "new-secret-new-secret-new-secret-new-secret"


def main() -> dict[str, bool]:
    """Show which tokens verify at each step of a rotation."""
    now = datetime.now(UTC)
    session_id = new_session_id()

    before = Keyring.from_secrets(OLD_SECRET)  # step 0: one secret
    old_token = sign_session_id(session_id, before, now=now)

    during = Keyring.from_secrets(NEW_SECRET, OLD_SECRET)  # step 1: new first, old kept
    new_token = sign_session_id(session_id, during, now=now)  # signed with NEW_SECRET

    after = Keyring.from_secrets(NEW_SECRET)  # step 2: old tokens have expired; drop it

    def ok(token: str, keyring: Keyring) -> bool:
        return isinstance(verify_session_token(token, keyring, now=now), Ok)

    return {
        "old token, during rotation": ok(old_token, during),
        "new token, during rotation": ok(new_token, during),
        "new token, after rotation": ok(new_token, after),
        "old token, after rotation": ok(old_token, after),
    }


if __name__ == "__main__":
    for step, verified in main().items():
        print(f"{step}: {'verifies' if verified else 'refused'}")
