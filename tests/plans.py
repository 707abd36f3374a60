"""PostgreSQL's plan of a SQLAlchemy statement, for tests that say how a query reads its table."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa


def explain(conn: sa.Connection, statement: sa.Executable, params: dict, *, analyze: bool = False) -> dict:
    """``EXPLAIN (FORMAT JSON)`` of ``statement`` with ``params``, run too if ``analyze``: the top plan."""
    compiled = statement.compile(dialect=conn.dialect)
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    sql = f"EXPLAIN ({options}) {compiled}"
    [[[explained]]] = conn.exec_driver_sql(sql, compiled.construct_params(params))
    return explained["Plan"]


def nodes(plan: dict) -> Iterator[dict]:
    """Every node of a plan, itself first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)
