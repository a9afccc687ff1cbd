"""Sign + verify one session token: typed-sessions vs a bare HMAC vs itsdangerous.

Also: the pre-keyed HMAC floor (a keyed ``cryptography`` HMAC copied per use, as our
signing does), a cold verification (the keyring's token cache emptied first) and a
repeat verification of a remembered token.

Run: ``python benchmarks/bench_signing.py`` (needs the ``bench`` extra).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, hmac
from itsdangerous import TimestampSigner

from harness import run_sync, table
from typed_sessions import Keyring, new_session_id, sign_session_id, verify_session_token
from typed_sessions.core.signing import verify_token_at

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
    """Sign, then verify a token never seen (the cache emptied: the cold path)."""
    token = sign_session_id(session_id, keyring, now=now)
    keyring.clear_token_cache()
    verify_session_token(token, keyring, now=now, max_age=max_age)


keyed = hmac.HMAC(hmac_key, hashes.SHA256())


def prekeyed_hmac() -> None:
    """The floor: the same two MACs from a pre-keyed HMAC, as typed-sessions makes them."""
    mac = keyed.copy()
    mac.update(message)
    tag = mac.finalize()
    check = keyed.copy()
    check.update(message)
    check.verify(tag)


token = sign_session_id(session_id, keyring, now=now)


def verify_cold() -> None:
    keyring.clear_token_cache()
    verify_session_token(token, keyring, now=now, max_age=max_age)


def verify_cached() -> None:
    verify_session_token(token, keyring, now=now, max_age=max_age)


stamp = now.timestamp()
age_seconds = max_age.total_seconds()


def verify_at_cached() -> None:
    """The middleware's and dependency's call: times as Unix seconds, no ``Result``."""
    verify_token_at(token, keyring, stamp, age_seconds)


def clear_only() -> None:
    keyring.clear_token_cache()


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
            ("pre-keyed cryptography HMAC", prekeyed_hmac),
            ("typed-sessions", typed_sessions),
            ("itsdangerous TimestampSigner", itsdangerous),
        ]
    )
    verifies = run_sync(
        [
            ("verify, cold", verify_cold),
            ("verify, cached", verify_cached),
            ("verify_token_at, cached", verify_at_cached),
            ("clear", clear_only),
        ]
    )
    print(table("sign + verify one token", medians, baseline="bare cryptography HMAC"))
    ours = medians["typed-sessions"]
    print(f"\ntyped-sessions / bare HMAC: {ours / medians['bare cryptography HMAC']:.2f}x")
    print(f"typed-sessions / pre-keyed HMAC: {ours / medians['pre-keyed cryptography HMAC']:.2f}x")
    print(f"itsdangerous / typed-sessions: {medians['itsdangerous TimestampSigner'] / ours:.2f}x")
    print()
    print(table("verify one token", verifies, baseline="verify, cached"))
    cold = verifies["verify, cold"] - verifies["clear"]  # without the emptying itself
    print(f"\ncold / cached verification: {cold / verifies['verify, cached']:.1f}x")
    print(f"cold / cached verify_token_at: {cold / verifies['verify_token_at, cached']:.1f}x")
