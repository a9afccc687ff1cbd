"""The embedded MemoryStore at scale: bytes per session, time per call, longest stall.

    ../.venv/bin/python bench_memory.py            # everything (about a minute, ~1 GB)
    ../.venv/bin/python bench_memory.py --quick    # 1k and 100k only, no 1M figures
    valgrind --tool=callgrind ../.venv/bin/python bench_memory.py --load-save 3000
                                                   # see load_and_save

1. Bytes per session: the store's own footprint (tracemalloc: what it holds after
   100,000 saves through the public API, minus what it held empty, over 100,000), for
   sessions of ``{"user": "alice", "n": 1}``; starsessions' InMemoryStore (the bench
   extra) measured the same way: ``write`` of its JsonSerializer's bytes under IDs of
   its own ``generate_session_id``.
2. Time per call (median of batches) of load, save (an update) and delete + save again,
   at 1,000, 100,000 and 1,000,000 sessions: O(1) means the ratios stay about 1.
3. The longest single call at 1,000,000 sessions, all expired (a clock moved by hand
   past their deadlines and the sweep interval), over the saves that follow: the purge
   of expired records runs inside calls, so this is the event loop's longest stall. In
   CPU time of the thread (``time.thread_time``: what the call itself costs), and in
   wall time, which on a busy machine adds the time the process was not scheduled.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from typed_sessions import (
    Expiry,
    MemoryStore,
    Ok,
    Session,
    SessionId,
    new_session,
    replace_data,
    utc_now,
)

R = TypeVar("R")
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
DATA = {"user": "alice", "n": 1}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def run(call: Coroutine[Any, Any, R]) -> R:
    """Run a call that never awaits (both memory stores), without an event loop."""
    try:
        call.send(None)
    except StopIteration as done:
        result: R = done.value
        return result
    raise AssertionError("the call awaited")


def fill(
    store: MemoryStore[dict[str, Any]], clock: Callable[[], datetime], n: int
) -> list[Session[Any]]:
    """Save ``n`` fresh sessions; return every 1000th saved record (a sample to work on)."""
    sample: list[Session[Any]] = []
    for i in range(n):
        result = run(store.save(new_session(dict(DATA), EXPIRY, now=clock())))
        assert isinstance(result, Ok)
        if i % max(n // 1000, 1) == 0:
            sample.append(result.value)
    return sample


def ours_bytes(n: int) -> float:
    clock = Clock()
    # A first store, so that what its first calls import (pydantic builds its schemas
    # lazily) is not counted as the measured store's.
    fill(MemoryStore(dict[str, Any], clock=clock, max_data_bytes=None), clock, 10)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store: MemoryStore[dict[str, Any]] = MemoryStore(
        dict[str, Any], max_sessions=n, clock=clock, max_data_bytes=None
    )
    fill(store, clock, n)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(store) == n
    return (after - before) / n


def starsessions_bytes(n: int) -> float | None:
    try:
        from starsessions.serializers import JsonSerializer
        from starsessions.session import generate_session_id
        from starsessions.stores.memory import InMemoryStore
    except ImportError:
        return None
    serializer = JsonSerializer()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = InMemoryStore()
    for _ in range(n):
        run(store.write(generate_session_id(), serializer.serialize(dict(DATA)), 7200, 7200))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(store.data) == n
    return (after - before) / n


def per_call(n: int, rounds: int = 15) -> dict[str, float]:
    """Median seconds per load, save and delete (+ save again) on a store of ``n``, on
    the default clock."""
    clock = utc_now
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], max_sessions=n)
    records = fill(store, clock, n)
    times: dict[str, list[float]] = {"load": [], "save": [], "delete": []}
    for _ in range(rounds):
        start = time.perf_counter()
        for record in records:
            run(store.load(record.id))
        times["load"].append((time.perf_counter() - start) / len(records))
        start = time.perf_counter()
        for index, record in enumerate(records):
            saved = run(store.save(replace_data(record, {"user": "alice", "n": 2}, now=clock())))
            assert isinstance(saved, Ok)
            records[index] = saved.value
        times["save"].append((time.perf_counter() - start) / len(records))
        start = time.perf_counter()
        for record in records:
            run(store.delete(record.id))
        times["delete"].append((time.perf_counter() - start) / len(records))
        for index in range(len(records)):  # back, untimed
            saved = run(store.save(new_session(dict(DATA), EXPIRY, now=clock())))
            assert isinstance(saved, Ok)
            records[index] = saved.value
    assert len(store) == n
    return {op: statistics.median(values) for op, values in times.items()}


def longest_stall(n: int, calls: int = 5000) -> tuple[float, float, float, int]:
    """The longest call of ``calls`` saves after ``n`` sessions all expired, in seconds of
    CPU (the call's own work) and of wall time (with whatever else the machine did); the
    median call's CPU seconds; how many records were left."""
    clock = Clock()
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], max_sessions=n, clock=clock)
    fill(store, clock, n)
    clock.now += timedelta(hours=3)  # past every deadline and the sweep interval
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(calls):
        session = new_session(dict(DATA), EXPIRY, now=clock())
        start, start_cpu = time.perf_counter(), time.thread_time()
        run(store.save(session))
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return max(cpu), max(wall), statistics.median(cpu), len(store)


def load_and_save(n: int) -> None:
    """``n`` requests' store calls: a load (by an ID ``str`` of its own, as parsed from a
    cookie) and a save of the session with its data changed, among 500 other sessions.
    For callgrind: the instructions of ``--load-save 3000`` minus those of ``--load-save
    1000``, over 2,000, are one load and save's."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    for _ in range(500):
        run(store.save(new_session(dict(DATA), EXPIRY, now=utc_now())))
    saved = run(store.save(new_session(dict(DATA), EXPIRY, now=utc_now())))
    assert isinstance(saved, Ok)
    session_id = saved.value.id
    for _ in range(n):
        loaded = run(store.load(SessionId((session_id + ".")[:-1])))
        assert loaded is not None
        loaded.data["n"] += 1
        assert isinstance(run(store.save(loaded)), Ok)


def main() -> None:
    if sys.argv[1:2] == ["--load-save"]:
        load_and_save(int(sys.argv[2]))
        return
    quick = "--quick" in sys.argv
    n = 100_000
    print(f"# MemoryStore at scale (Python {sys.version.split()[0]})\n")
    print(f"## Bytes per session, {n:,} sessions of {DATA}")
    print(f"typed-sessions MemoryStore  {ours_bytes(n):7.1f}")
    peer = starsessions_bytes(n)
    if peer is None:
        print("starsessions InMemoryStore  (not installed: pip install -e '.[bench]')")
    else:
        print(f"starsessions InMemoryStore  {peer:7.1f}")
    sizes = (1_000, 100_000) if quick else (1_000, 100_000, 1_000_000)
    print("\n## Time per call (us, median)\nsessions        load     save   delete")
    base: dict[str, float] | None = None
    for size in sizes:
        figures = per_call(size)
        base = base or figures
        cells = "".join(f"{figures[op] * 1e6:9.2f}" for op in ("load", "save", "delete"))
        ratios = " ".join(f"{figures[op] / base[op]:.2f}" for op in ("load", "save", "delete"))
        print(f"{size:>9,} {cells}   (ratio to 1k: {ratios})")
        gc.collect()
    stall_size = 100_000 if quick else 1_000_000
    longest, longest_wall, median, left = longest_stall(stall_size)
    print(f"\n## Longest call after {stall_size:,} sessions expired (5,000 saves)")
    print(
        f"longest {longest * 1e3:.2f} ms of CPU ({longest_wall * 1e3:.2f} ms of wall time), "
        f"median {median * 1e6:.1f} us; {left:,} records left"
    )


if __name__ == "__main__":
    main()
