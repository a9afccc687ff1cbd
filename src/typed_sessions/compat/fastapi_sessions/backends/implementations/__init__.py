"""fastapi-sessions' ``backends.implementations``: ``InMemoryBackend``, plus ``RedisBackend``
(a store shared by processes) and ``StoreBackend`` (any typed-sessions store)."""

from typed_sessions.compat.fastapi_sessions.backends.implementations.store_backends import (
    InMemoryBackend,
    RedisBackend,
    StoreBackend,
)

__all__ = ["InMemoryBackend", "RedisBackend", "StoreBackend"]
