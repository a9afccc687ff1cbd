"""A new session data model, deployed without signing anybody out.

The running release stores ``CartV1``; the next one renames ``items`` to ``lines`` and
adds a required ``currency``. Records written for the old model do not validate as the
new one: the store passes their JSON to ``upgrade``, a pure function, and validates what
it returns; the next save of each session writes the new shape. For a rolling deploy,
where old and new workers run side by side, the old release first learns to read the
new shape (``downgrade``), so each side reads the other's records.
"""

from typing import Any

from pydantic import BaseModel

from typed_sessions import MemoryStore


class CartV1(BaseModel):  # the model of the release running now
    items: list[str]


class Cart(BaseModel):  # the model of the next release
    lines: list[str]
    currency: str


def upgrade(old: dict[str, Any]) -> dict[str, Any]:
    """From the stored JSON object of a ``CartV1`` to a ``Cart``'s; others as they are."""
    if "items" in old:
        return {"lines": old["items"], "currency": "EUR"}
    return old


def downgrade(new: dict[str, Any]) -> dict[str, Any]:
    """Shipped first, with ``CartV1``: from a ``Cart``'s JSON object to a ``CartV1``'s."""
    if "lines" in new:
        return {"items": new["lines"]}
    return new


# Step 1, the old model, reading the new shape too (RedisStore and SqlStore take the
# same options).
old_release = MemoryStore(CartV1, upgrade=downgrade)
# Step 2, the new model, reading the old shape; remove `upgrade` once every session
# written by step 1 has expired (its absolute lifetime after step 2 is everywhere).
new_release = MemoryStore(Cart, upgrade=upgrade)
