"""PostgreSQL array parameters: one compiled statement over a whole batch, one array per column."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa


def unnest(*columns: tuple[str, sa.types.TypeEngine], ordinality: str | None = None):
    """PostgreSQL ``unnest(:a, :b, …) AS wanted(a, b, …)``: rows from one array parameter per column,
    so a statement over a batch's keys is built and compiled once (a ``VALUES`` list of literals was
    compiled anew for each batch: a quarter of the store's CPU in a replay). ``ordinality``: the name of
    a column numbering the rows from 1, in the arrays' order."""
    from sqlalchemy.dialects.postgresql import ARRAY

    arrays = (sa.bindparam(name, type_=ARRAY(kind)) for name, kind in columns)  # bound as kind[]
    names = [name for name, _ in columns]
    return (sa.func.unnest(*arrays).table_valued(*names, with_ordinality=ordinality)
            .render_derived(name="wanted"))


def arrays(keys: Sequence[tuple], names: Sequence[str]) -> dict[str, list]:
    """Tuples to one list per name: the parameters of a statement built with ``unnest``."""
    return {name: [key[i] for key in keys] for i, name in enumerate(names)}
