"""Helpers for work over a whole batch: array parameters for one compiled statement, and writes
side by side."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa


def unnest(*columns: tuple[str, sa.types.TypeEngine]):
    """PostgreSQL ``unnest(:a, :b, …) AS wanted(a, b, …)``: rows from one array parameter per column,
    so a statement over a batch's keys is built and compiled once (a ``VALUES`` list of literals was
    compiled anew for each batch: a quarter of the store's CPU in a replay)."""
    from sqlalchemy.dialects.postgresql import ARRAY

    arrays = (sa.bindparam(name, type_=ARRAY(kind)) for name, kind in columns)  # bound as kind[]
    return sa.func.unnest(*arrays).table_valued(*(name for name, _ in columns)).render_derived(name="wanted")


def arrays(keys: Sequence[tuple], names: Sequence[str]) -> dict[str, list]:
    """Tuples to one list per name: the parameters of a statement built with ``unnest``."""
    return {name: [key[i] for key in keys] for i, name in enumerate(names)}


def each(function, items: Sequence, workers: int) -> list:
    """``function`` over ``items`` on a few threads; the first exception propagates."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))
