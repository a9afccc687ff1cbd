"""Result values: ``Ok`` for success, ``Err`` for an expected failure.

Pure functions in this library return a ``Result`` instead of raising for untrusted
input. Both variants are frozen dataclasses, so they work with ``match``::

    match verify_session_token(token, keyring, now=now):
        case Ok(session_id):
            ...
        case Err(error):
            ...

and ``isinstance`` narrows them under ``mypy --strict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

__all__ = ["Err", "Ok", "Result"]

T_co = TypeVar("T_co", covariant=True)
E_co = TypeVar("E_co", covariant=True)
T = TypeVar("T")
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Ok(Generic[T_co]):
    """A successful result holding ``value``."""

    value: T_co


@dataclass(frozen=True, slots=True)
class Err(Generic[E_co]):
    """A failed result holding ``error``, a value that names what went wrong."""

    error: E_co


Result: TypeAlias = Ok[T] | Err[E]
"""Either ``Ok[T]`` or ``Err[E]``."""
