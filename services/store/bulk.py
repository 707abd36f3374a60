"""Writes side by side, for work over a whole batch."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor


def each(function, items: Sequence, workers: int) -> list:
    """``function`` over ``items`` on a few threads; the first exception propagates."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))
