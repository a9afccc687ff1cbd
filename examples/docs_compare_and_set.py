"""The store's compare-and-set: a save from a stale version is refused, never lost.

Run: ``python examples/docs_compare_and_set.py``
"""

from __future__ import annotations

import asyncio
from typing import Any

from typed_sessions import Err, Expiry, MemoryStore, Ok, new_session, replace_data, utc_now


async def main() -> list[str]:
    """Two requests load version 1 of one session; both save. Return what happened."""
    store = MemoryStore(dict[str, Any])
    created = await store.save(new_session({"theme": "light"}, Expiry(), now=utc_now()))
    assert isinstance(created, Ok)
    session_id = created.value.id
    log = [f"created: version {created.value.version}"]

    first = await store.load(session_id)  # request A
    second = await store.load(session_id)  # request B, at the same moment
    assert first is not None
    assert second is not None

    match await store.save(replace_data(first, {"theme": "dark"}, now=utc_now())):
        case Ok(saved):
            log.append(f"A saved: version {saved.version}")
        case Err(conflict):
            log.append(f"A refused: {conflict}")

    match await store.save(replace_data(second, {"theme": "blue"}, now=utc_now())):
        case Ok(saved):
            log.append(f"B saved: version {saved.version}")
        case Err(conflict):  # B loaded version 1, the store holds 2: nothing written
            log.append(f"B refused: expected {conflict.expected}, found {conflict.found}")

    stored = await store.load(session_id)
    assert stored is not None
    log.append(f"stored: {stored.data}, version {stored.version}")
    return log


if __name__ == "__main__":
    print("\n".join(asyncio.run(main())))
