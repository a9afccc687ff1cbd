"""What one request did to the top-level keys of a session, and replaying it (pure).

When a save loses a race, the keys this request changed are found by comparing JSON
(:func:`diff_data`) and applied to the newest data (:func:`apply_changes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from typed_sessions.core.jsondata import encode_json

__all__ = ["KeyChanges", "apply_changes", "diff_data"]


@dataclass(frozen=True, slots=True)
class KeyChanges:
    """What one request did to the top-level keys of a session: new values and removals."""

    updated: Mapping[str, Any] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.updated) or bool(self.removed)


def _same(left: Any, right: Any) -> bool:
    # JSON text, not ==: 1, 1.0 and True are equal in Python but not as stored JSON.
    return left is right or encode_json(left) == encode_json(right)


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
