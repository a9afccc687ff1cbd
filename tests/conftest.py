"""Shared fixtures: an asyncio backend for anyio tests, a settable clock, a keyring."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from typed_sessions import Keyring

START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SECRET = "0123456789abcdef0123456789abcdef-test-secret"
# The examples read their secret with secret_from_env(), which refuses to start without
# one (no public default): the suite configures one, as a deployment would.
os.environ.setdefault("SESSION_SECRET", SECRET)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_secrets(SECRET)
