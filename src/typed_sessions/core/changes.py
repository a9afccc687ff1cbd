"""What one request read and did to the top-level keys of a session (pure).

When a save loses a race, the keys this request changed are found by comparing JSON
(:func:`diff_data`) and applied to the newest data (:func:`apply_changes`), unless
another writer changed something this request read (:func:`lost_reads`): then its
changes rest on a value that is no longer there, and it must be refused instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from typed_sessions.core.jsondata import encode_json

__all__ = ["NOTHING_READ", "KeyChanges", "ReadSet", "apply_changes", "diff_data", "lost_reads"]

_MISSING: Any = object()  # a key absent from one side


@dataclass(frozen=True, slots=True)
class KeyChanges:
    """What one request did to the top-level keys of a session: new values and removals."""

    updated: Mapping[str, Any] = field(default_factory=dict[str, Any])
    removed: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.updated) or bool(self.removed)


def _same(left: Any, right: Any) -> bool:
    # JSON text, not ==: 1, 1.0 and True are equal in Python but not as stored JSON.
    if left is right:
        return True
    if left is _MISSING or right is _MISSING:
        return False
    return encode_json(left) == encode_json(right)


def diff_data(before: Mapping[str, Any], after: Mapping[str, Any]) -> KeyChanges:
    """Return the top-level keys that differ between ``before`` and ``after``, as JSON.

    A key whose value was changed in place (a nested change) counts as updated.
    """
    updated = {k: v for k, v in after.items() if k not in before or not _same(before[k], v)}
    removed = frozenset(k for k in before if k not in after)
    return KeyChanges(updated, removed)


def apply_changes(data: Mapping[str, Any], changes: KeyChanges) -> dict[str, Any]:
    """Return a new dict: ``data`` with ``changes`` applied. ``data`` is not modified."""
    merged = {k: v for k, v in data.items() if k not in changes.removed}
    merged.update(changes.updated)
    return merged


@dataclass(frozen=True, slots=True)
class ReadSet:
    """What a request read of a session: some keys' values (a membership test reads the
    key's presence), the set of keys (iteration, ``len``), or everything (``items()``,
    ``values()``, a copy, a comparison)."""

    keys: frozenset[str] = frozenset()
    key_set: bool = False
    everything: bool = False


NOTHING_READ = ReadSet()
"""The read set of a request that read nothing (it only wrote)."""


def lost_reads(
    before: Mapping[str, Any], newest: Mapping[str, Any], reads: ReadSet
) -> frozenset[str]:
    """Return the keys this request read that another writer changed since ``before``.

    A change is by JSON, a key added or removed included. With ``reads.key_set``, any key
    added or removed counts; with ``reads.everything``, any change. Empty: the request's
    own changes can be applied to ``newest`` without resting on a lost value.
    """
    if reads.everything:
        candidates: Iterable[str] = before.keys() | newest.keys()
    elif reads.key_set:
        added_or_removed = before.keys() ^ newest.keys()
        if added_or_removed:
            return frozenset(added_or_removed)
        candidates = reads.keys
    else:
        candidates = reads.keys
    return frozenset(
        key for key in candidates if not _same(before.get(key, _MISSING), newest.get(key, _MISSING))
    )
