"""The package root: RedisStore imports lazily and says which extra it needs, and every
public name is in the API reference."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import typed_sessions


def test_redis_store_without_the_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "redis" or m.startswith("redis.")] + ["redis"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if redis-py were not installed
    monkeypatch.delitem(sys.modules, "typed_sessions.stores.redis", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"typed-sessions\[redis\]"):
        typed_sessions.__getattr__("RedisStore")
    assert typed_sessions.MemoryStore is not None  # the rest of the package is fine


def test_sql_store_without_the_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "sqlalchemy" or m.startswith("sqlalchemy.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if SQLAlchemy were not installed
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    for name in [m for m in sys.modules if m.startswith("typed_sessions.stores.sql")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("SqlStore", "session_table"):
        with pytest.raises(ModuleNotFoundError, match=r"typed-sessions\[sql\]"):
            typed_sessions.__getattr__(name)
    assert typed_sessions.MemoryStore is not None


def test_every_public_name_is_in_the_api_reference() -> None:
    api = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    documented = set(re.findall(r"^::: typed_sessions\.(?:[a-z_.]+\.)?(\w+)$", api, re.M))
    public = {name for name in typed_sessions.__all__ if not name.startswith("__")}
    assert public - documented == set()
