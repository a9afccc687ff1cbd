"""What in session data JSON cannot keep as it is: found by one walk, for error messages."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from math import isfinite
from typing import cast

__all__ = ["Unfit", "find_unfit"]


@dataclass(frozen=True, slots=True)
class Unfit:
    """What in session data JSON cannot keep as it is: ``found``, a NaN or infinite float,
    or (``is_key``) a ``dict`` key that is not a ``str``, or a ``str`` that is not valid
    Unicode (a lone surrogate); ``steps``, the keys and indexes down to the float, or to
    the dict holding the key."""

    steps: tuple[object, ...]
    found: object
    is_key: bool


def find_unfit(value: object, *, keys: bool) -> Unfit | None:
    """The first thing in ``value`` (JSON-like data: dicts, lists, tuples, sets, deques)
    JSON cannot keep as it is, in order (a dict's keys, then its values one by one): a
    NaN or infinite float, a ``dict`` key that is not valid Unicode (pydantic writes its
    lone surrogates as U+FFFD) and, with ``keys``, one that is not a ``str``. ``None``
    when nothing. Data that holds itself ends the walk."""
    stack: list[tuple[object, tuple[object, ...]]] = [(value, ())]  # items, steps to each
    seen: set[int] = set()
    while stack:
        item, steps = stack.pop()
        if isinstance(item, float):
            if not isfinite(item):
                return Unfit(steps, item, is_key=False)
            continue
        ident = id(item)
        if ident in seen or not isinstance(item, dict | list | tuple | set | frozenset | deque):
            continue
        seen.add(ident)
        if isinstance(item, dict):
            entries = cast("dict[object, object]", item)
            for key in entries:
                if isinstance(key, str):  # (a str subclass encodes as its value)
                    if not key.isascii() and not _is_unicode(key):
                        return Unfit(steps, key, is_key=True)
                elif keys:
                    return Unfit(steps, key, is_key=True)
            stack.extend((nested, (*steps, key)) for key, nested in reversed(entries.items()))
        else:
            members = list(cast("Iterable[object]", item))
            stack.extend((members[i], (*steps, i)) for i in range(len(members) - 1, -1, -1))
    return None


def _is_unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode: no lone surrogate, so it encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
