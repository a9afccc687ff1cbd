"""Shared fixtures: an asyncio backend for anyio tests, a settable clock, a keyring."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

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


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# What must never reach a log: a session ID (43 URL-safe characters standing alone), a
# token (127), a connection string, the test secret.
_ID_OR_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]{43}|[A-Za-z0-9_-]{127})(?![\w-])")
_CONNECTION = re.compile(
    r"\b(?:redis|rediss|valkey|postgres|postgresql|mysql|mariadb)(?:\+\w+)?://"
)


def leaks(record: logging.LogRecord) -> list[str]:
    """What in ``record`` (message, arguments, exception) must not be logged."""
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += " " + repr(record.exc_info[1])
    found = _ID_OR_TOKEN.findall(text) + _CONNECTION.findall(text)
    return found + ([SECRET] if SECRET in text else [])


@pytest.fixture(autouse=True)
def nothing_secret_is_logged() -> Iterator[None]:
    """Every record the library logs in every test, fault tests included, at every level:
    no token, session ID, secret or connection string."""
    logger = logging.getLogger("typed_sessions")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    leaked = {r.getMessage(): found for r in handler.records if (found := leaks(r))}
    assert leaked == {}


R = TypeVar("R")


def run(call: Coroutine[Any, Any, R]) -> R:
    """Run a MemoryStore call, which never awaits, without an event loop."""
    try:
        call.send(None)
    except StopIteration as done:
        result: R = done.value
        return result
    raise AssertionError("a MemoryStore call awaited")  # pragma: no cover
