"""The nearest-rank percentile every devnet report quotes (load runs, chaos runs, timelines)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The value at rank ⌈fraction·n⌉ of the sorted values (None for none).

    Nearest rank, not interpolation: a reported p99 is a latency some tx had.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return ordered[max(0, min(len(ordered), rank) - 1)]
