"""Pieces of the peer libraries' documented setups that several benchmarks share."""

from __future__ import annotations

from typing import Any, Generic, TypeVar
from uuid import UUID

from fastapi import HTTPException
from fastapi_sessions.backends.implementations import InMemoryBackend
from fastapi_sessions.session_verifier import SessionVerifier

ModelT = TypeVar("ModelT")


class BasicVerifier(SessionVerifier[UUID, Any], Generic[ModelT]):  # type: ignore[misc]  # untyped peer
    """fastapi-sessions' verifier, as on its getting-started page: a session that exists
    is valid."""

    def __init__(
        self,
        *,
        identifier: str,
        auto_error: bool,
        backend: InMemoryBackend[UUID, ModelT],
        auth_http_exception: HTTPException,
    ) -> None:
        self._identifier = identifier
        self._auto_error = auto_error
        self._backend = backend
        self._auth_http_exception = auth_http_exception

    @property
    def identifier(self) -> str:
        return self._identifier

    @property
    def backend(self) -> InMemoryBackend[UUID, ModelT]:
        return self._backend

    @property
    def auto_error(self) -> bool:
        return self._auto_error

    @property
    def auth_http_exception(self) -> HTTPException:
        return self._auth_http_exception

    def verify_session(self, model: ModelT) -> bool:
        return True
