"""A clock is checked where it is configured: a naive one fails at start-up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from typed_sessions import (
    Keyring,
    MemoryStore,
    RedisStore,
    make_cookie_dependency,
    session_middleware,
    utc_now,
)

from .conftest import SECRET


def naive() -> datetime:
    return datetime(2026, 1, 1)  # naive: the mistake under test


def test_a_naive_clock_is_refused_where_it_is_configured() -> None:
    keys = Keyring.from_secrets(SECRET)
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    with pytest.raises(ValueError, match="aware datetime"):
        MemoryStore(dict[str, Any], clock=naive)
    with pytest.raises(ValueError, match="aware datetime"):
        RedisStore(Redis(), dict[str, Any], clock=naive)  # no connection is made
    with pytest.raises(ValueError, match="aware datetime"):
        make_cookie_dependency(store, lambda s: True, keys=keys, clock=naive)
    with pytest.raises(ValueError, match="aware datetime"):
        session_middleware(FastAPI(), store=store, keys=keys, clock=naive)
    with pytest.raises(ValueError, match="aware datetime"):
        MemoryStore(dict[str, Any], clock=lambda: "now")  # type: ignore[arg-type, return-value]
    assert isinstance(MemoryStore(dict[str, Any], clock=utc_now), MemoryStore)
