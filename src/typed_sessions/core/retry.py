"""How long to wait before retrying a save that lost a race (pure)."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["retry_delay"]


def retry_delay(
    attempt: int,
    *,
    base: float = 0.001,
    cap: float = 0.05,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (0-based): "full jitter".

    A random time between zero and ``base * 2**attempt`` (at most ``cap``), so that many
    writers who collided spread out instead of colliding again in lockstep.
    """
    return uniform(0.0, min(cap, base * 2**attempt))
