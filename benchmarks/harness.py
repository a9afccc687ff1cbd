"""A tiny interleaved benchmark harness: medians and ratios in one process run.

Contenders run in turns (A, B, C, A, B, C, ...) so that machine noise hits them alike;
each turn times a batch of calls and the table reports the median per-call time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

Sync = Callable[[], object]
Async = Callable[[], Awaitable[object]]


def run_sync(
    contenders: Sequence[tuple[str, Sync]], *, rounds: int = 30, batch: int = 2000
) -> dict[str, float]:
    """Return each contender's median seconds per call, measured interleaved."""
    samples: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for _, fn in contenders:  # warm-up
        for _ in range(batch // 10 or 1):
            fn()
    for _ in range(rounds):
        for name, fn in contenders:
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            samples[name].append((time.perf_counter() - start) / batch)
    return {name: statistics.median(values) for name, values in samples.items()}


def run_async(
    contenders: Sequence[tuple[str, Async]], *, rounds: int = 20, batch: int = 300
) -> dict[str, float]:
    """Like :func:`run_sync` for coroutine functions, all on one event loop."""

    async def main() -> dict[str, float]:
        samples: dict[str, list[float]] = {name: [] for name, _ in contenders}
        for _, fn in contenders:
            for _ in range(batch // 10 or 1):
                await fn()
        for _ in range(rounds):
            for name, fn in contenders:
                start = time.perf_counter()
                for _ in range(batch):
                    await fn()
                samples[name].append((time.perf_counter() - start) / batch)
        return {name: statistics.median(values) for name, values in samples.items()}

    return asyncio.run(main())


def table(title: str, medians: dict[str, float], *, baseline: str) -> str:
    """Format medians as a table with each contender's ratio to ``baseline``."""
    base = medians[baseline]
    width = max(len(name) for name in medians)
    lines = [f"## {title}", f"{'contender':<{width}}  {'median':>12}  {'ratio':>7}"]
    for name, value in medians.items():
        lines.append(f"{name:<{width}}  {value * 1e6:>9.2f} us  {value / base:>6.2f}x")
    return "\n".join(lines)
