"""Sign + verify one session token: typed-sessions vs a bare HMAC vs itsdangerous.

The floors MAC exactly the bytes a token's tag covers: the 63 ASCII characters of its
key, time and session-ID parts, taken from a real token (63 bytes need two SHA-256
blocks in the inner hash; a 45-byte stand-in would need one, and flatter the floor).
The pre-keyed floor copies a keyed ``cryptography`` HMAC per use, as our signing does:
one MAC to sign, one to verify and compare. Also: a cold verification (the keyring's
token cache emptied first; the emptying is measured alone and taken off) and a repeat
verification of a remembered token.

Run: ``python benchmarks/bench_signing.py`` (needs the ``bench`` extra), or
``python bench_signing.py instructions [N1 N2]`` for callgrind instruction counts per
call (needs ``valgrind``; each contender runs N1 and N2 times in processes of its own,
the difference over ``N2 - N1`` is its count per call).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, hmac
from itsdangerous import TimestampSigner

from harness import callgrind_count, run_sync, table
from typed_sessions import Keyring, new_session_id, sign_session_id, verify_session_token
from typed_sessions.core.signing import verify_token_at

SECRET = "s" * 32
keyring = Keyring.from_secrets(SECRET)
session_id = new_session_id()
now = datetime(2026, 12, 5, 8, 0, 0, 123456, tzinfo=UTC)  # fixed: the same count each run
max_age = timedelta(hours=1)
signer = TimestampSigner(SECRET)
token = sign_session_id(session_id, keyring, now=now)
message = token.encode("ascii")[:63]  # what the tag covers: key, time and ID parts
assert len(message) == 63
hmac_key = keyring.signing_key.key


def typed_sessions() -> None:
    """Sign, then verify a token never seen (the cache emptied: the cold path)."""
    signed = sign_session_id(session_id, keyring, now=now)
    keyring.clear_token_cache()
    verify_session_token(signed, keyring, now=now, max_age=max_age)


keyed = hmac.HMAC(hmac_key, hashes.SHA256())


def prekeyed_hmac() -> None:
    """The floor: the same two MACs from a pre-keyed HMAC, as typed-sessions makes them."""
    mac = keyed.copy()
    mac.update(message)
    tag = mac.finalize()
    check = keyed.copy()
    check.update(message)
    check.verify(tag)


def verify_cold() -> None:
    keyring.clear_token_cache()
    verify_session_token(token, keyring, now=now, max_age=max_age)


def verify_cached() -> None:
    verify_session_token(token, keyring, now=now, max_age=max_age)


stamp = now.timestamp()
age_seconds = max_age.total_seconds()


def verify_at_cold() -> None:
    keyring.clear_token_cache()
    verify_token_at(token, keyring, stamp, age_seconds)


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


CONTENDERS: dict[str, Callable[[], None]] = {
    "bare cryptography HMAC": bare_hmac,
    "pre-keyed cryptography HMAC": prekeyed_hmac,
    "typed-sessions": typed_sessions,
    "itsdangerous TimestampSigner": itsdangerous,
}
VERIFIES: dict[str, Callable[[], None]] = {
    "verify, cold": verify_cold,
    "verify, cached": verify_cached,
    "verify_token_at, cold": verify_at_cold,
    "verify_token_at, cached": verify_at_cached,
    "clear": clear_only,
}


def report(medians: dict[str, float], verifies: dict[str, float], unit: str) -> None:
    clear = verifies["clear"]
    ours = medians["typed-sessions"] - clear  # without the emptying itself
    floor = medians["pre-keyed cryptography HMAC"]
    print(f"\ntyped-sessions / bare HMAC: {ours / medians['bare cryptography HMAC']:.2f}x")
    print(f"typed-sessions / pre-keyed HMAC (the floor): {ours / floor:.2f}x")
    print(f"  over the floor: {ours - floor:,.{2 if unit == 'us' else 0}f} {unit}")
    print(f"itsdangerous / typed-sessions: {medians['itsdangerous TimestampSigner'] / ours:.2f}x")
    cold = verifies["verify, cold"] - clear
    cold_at = verifies["verify_token_at, cold"] - clear
    print(f"cold / cached verify_session_token: {cold / verifies['verify, cached']:.1f}x")
    print(f"cold / cached verify_token_at: {cold_at / verifies['verify_token_at, cached']:.1f}x")


def timings() -> None:
    medians = run_sync(list(CONTENDERS.items()))
    verifies = run_sync(list(VERIFIES.items()))
    print(table("sign + verify one token", medians, baseline="bare cryptography HMAC"))
    print()
    print(table("verify one token", verifies, baseline="verify, cached"))
    print("\n(typed-sessions and the cold rows less the 'clear' row:)")
    micro = {name: value * 1e6 for name, value in medians.items()}
    report(micro, {name: value * 1e6 for name, value in verifies.items()}, "us")


def count(name: str, calls: int) -> int:
    """Instructions a child process running ``name`` ``calls`` times executed."""
    return callgrind_count(__file__, "--child", name, str(calls))


def instructions(low: int, high: int) -> None:
    counts: dict[str, float] = {}
    for name in [*CONTENDERS, *VERIFIES]:
        counts[name] = (count(name, high) - count(name, low)) / (high - low)
        print(f"{name:<30} {counts[name]:>10,.0f} instructions per call", flush=True)
    report(
        {name: counts[name] for name in CONTENDERS},
        {name: counts[name] for name in VERIFIES},
        "instructions",
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        run = {**CONTENDERS, **VERIFIES}[sys.argv[2]]
        for _ in range(int(sys.argv[3])):
            run()
    elif sys.argv[1:2] == ["instructions"]:
        low, high = (int(a) for a in sys.argv[2:4]) if len(sys.argv) >= 4 else (2000, 12000)
        instructions(low, high)
    else:
        timings()
