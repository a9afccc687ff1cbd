"""Result values: ``Ok`` for success, ``Err`` for an expected failure.

Pure functions in this library return a ``Result`` instead of raising for untrusted
input. Both variants are frozen dataclasses, so they work with ``match``::

    match verify_session_token(token, keyring, now=now):
        case Ok(session_id):
            ...
        case Err(error):
            ...

and ``isinstance`` narrows them under ``mypy --strict``. Build them as ``Ok(value)``
and annotate where mypy needs the type: on Python 3.11 the subscripted form
``Ok[int](1)`` raises ``TypeError`` (a CPython limitation of slotted frozen generic
dataclasses, which ``Session[T]`` shares).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

__all__ = ["Err", "Ok", "Result"]

T_co = TypeVar("T_co", covariant=True)
E_co = TypeVar("E_co", covariant=True)
T = TypeVar("T")
E = TypeVar("E")


# Both are built on every verification and store call: their ``__init__`` sets the slot
# through its descriptor, which is what a frozen dataclass does, minus the detour through
# ``object.__setattr__``.


@dataclass(frozen=True, slots=True, init=False)
class Ok(Generic[T_co]):
    """A successful result holding ``value``. Build it as ``Ok(value)``: on Python 3.11
    the subscripted ``Ok[int](1)`` raises ``TypeError`` (slotted frozen dataclasses)."""

    value: T_co

    def __init__(self, value: T_co) -> None:
        _set_ok_value(self, value)


@dataclass(frozen=True, slots=True, init=False)
class Err(Generic[E_co]):
    """A failed result holding ``error``, a value that names what went wrong. Build it as
    ``Err(error)``, not ``Err[E](error)`` (see :class:`Ok`)."""

    error: E_co

    def __init__(self, error: E_co) -> None:
        _set_err_error(self, error)


_set_ok_value: Callable[[Ok[Any], Any], None] = Ok.__dict__["value"].__set__
_set_err_error: Callable[[Err[Any], Any], None] = Err.__dict__["error"].__set__


Result: TypeAlias = Ok[T] | Err[E]
"""Either ``Ok[T]`` or ``Err[E]``."""
