"""Sign + verify one session token: typed-sessions vs a bare HMAC vs itsdangerous.

Run: ``python benchmarks/bench_signing.py`` (needs the ``bench`` extra).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, hmac
from itsdangerous import TimestampSigner

from harness import run_sync, table
from typed_sessions import Keyring, new_session_id, sign_session_id, verify_session_token

SECRET = "s" * 32
keyring = Keyring.from_secrets(SECRET)
session_id = new_session_id()
now = datetime.now(UTC)
max_age = timedelta(hours=1)
signer = TimestampSigner(SECRET)
# The same message our token signs: version, key id, time, 32-byte id (45 bytes).
message = b"\x01" + b"k" * 4 + b"t" * 8 + b"i" * 32
hmac_key = b"k" * 32


def typed_sessions() -> None:
    token = sign_session_id(session_id, keyring, now=now)
    verify_session_token(token, keyring, now=now, max_age=max_age)


def bare_hmac() -> None:
    mac = hmac.HMAC(hmac_key, hashes.SHA256())
    mac.update(message)
    tag = mac.finalize()
    check = hmac.HMAC(hmac_key, hashes.SHA256())
    check.update(message)
    check.verify(tag)


def itsdangerous() -> None:
    signer.unsign(signer.sign(session_id), max_age=3600)


if __name__ == "__main__":
    medians = run_sync(
        [
            ("bare cryptography HMAC", bare_hmac),
            ("typed-sessions", typed_sessions),
            ("itsdangerous TimestampSigner", itsdangerous),
        ]
    )
    print(table("sign + verify one token", medians, baseline="bare cryptography HMAC"))
    ours = medians["typed-sessions"]
    print(f"\ntyped-sessions / bare HMAC: {ours / medians['bare cryptography HMAC']:.2f}x")
    print(f"itsdangerous / typed-sessions: {medians['itsdangerous TimestampSigner'] / ours:.2f}x")
