"""Read side of the store: pure functions from an engine and filters to JSON-ready dicts.

The API and the dashboard call only these, so both show the same answers. Pages are
keyset-paginated on the row id (newest first): a page boundary never moves when rows
are inserted meanwhile, so walking all pages yields every row once. The feed (``after``) reads
forward from an id: the store gives ids in commit order, so a reader following it never passes a
row that commits late.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.api.comparison import check_comparison, check_stored, compare_models
from services.api.filters import (
    ANY_REPLAY,
    LIVE,
    FilterError,
    Filters,
    decode_cursor,
    encode_cursor,
    parse_id,
    parse_limit,
)
from services.api.replay_requests import request_run
from services.api.run_view import get_run, list_runs
from shared.database import backend_of
from shared.predictions import LIVE_RECORD, record
from shared.predictions import predictions as t
from shared.times import iso

__all__ = ["FilterError", "Filters", "Page", "check_comparison", "check_stored", "compare_models", "get_run",
           "label_counts", "latest_for_issue", "list_predictions", "list_runs", "model_versions",
           "request_run"]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _filters(filters: Filters | Mapping[str, str] | None) -> Filters:
    if filters is None:
        return Filters()
    return filters if isinstance(filters, Filters) else Filters.parse(filters)


def _where(f: Filters) -> list[sa.ColumnElement[bool]]:
    clauses = []
    equal = {"repo": t.c.repo, "issue": t.c.number, "task": t.c.task, "model": t.c.model_version,
             "label": t.c.label}
    for name, column in equal.items():
        if getattr(f, name) is not None:
            clauses.append(column == getattr(f, name))
    if f.min_confidence is not None:
        clauses.append(t.c.confidence >= f.min_confidence)
    if f.max_confidence is not None:
        clauses.append(t.c.confidence <= f.max_confidence)
    if f.since is not None:
        clauses.append(t.c.predicted_at >= f.since)
    if f.until is not None:
        clauses.append(t.c.predicted_at < f.until)
    if f.replay == LIVE:
        clauses.append(LIVE_RECORD)
    elif f.replay == ANY_REPLAY:
        clauses.append(t.c.replay_id.is_not(None))
    elif f.replay is not None:
        clauses.append(t.c.replay_id == f.replay)
    return clauses


def list_predictions(engine: Engine, filters: Filters | Mapping[str, str] | None = None,
                     cursor: str | None = None, limit: int | str | None = None,
                     after: int | str | None = None) -> Page:
    """Newest first; ``next_cursor`` is None on the last page. With ``after`` (an id), the feed: the
    rows stored after it, oldest first, ``next_cursor`` None (read on with the last item's id). The
    store makes ids visible in the order it gives them, so a feed never passes a row."""
    f, size, since_id = _filters(filters), parse_limit(limit), parse_id("after", after)
    if since_id is not None:
        if cursor:
            raise FilterError("give either cursor (pages, newest first) or after (the feed), not both")
        query = sa.select(t).where(*_where(f), t.c.id > since_id).order_by(t.c.id).limit(size)
        with engine.connect() as conn:
            return Page([record(r) for r in conn.execute(query)], None)
    before = decode_cursor(cursor)
    query = sa.select(t).where(*_where(f))
    if before is not None:
        query = query.where(t.c.id < before)
    with engine.connect() as conn:
        rows = list(conn.execute(query.order_by(t.c.id.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return Page([record(r) for r in rows], encode_cursor(rows[-1].id) if more else None)


def latest_for_issue(engine: Engine, repo: str, number: int) -> dict[str, dict[str, Any]]:
    """Per task, the prediction that stands for the issue now: live before replayed, then the
    latest event position, then the latest row. Empty when the issue has none."""
    live_first = sa.case((LIVE_RECORD, 0), else_=1)
    rank = sa.func.row_number().over(partition_by=t.c.task,
                                     order_by=(live_first, t.c.position.desc(), t.c.id.desc()))
    ranked = sa.select(t, rank.label("rank")).where(t.c.repo == repo, t.c.number == number).subquery()
    query = sa.select(ranked).where(ranked.c.rank == 1).order_by(ranked.c.task)
    with engine.connect() as conn:
        return {row.task: record(row) for row in conn.execute(query)}


def label_counts(engine: Engine, filters: Filters | Mapping[str, str] | None = None, *, days: int = 14,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """Predictions per task, UTC day and label over the last ``days`` days (today included)."""
    if not 1 <= days <= 366:
        raise FilterError(f"days must be from 1 to 366, got {days}")
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    start = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=days - 1)
    day = backend_of(engine).day(t.c.predicted_at).label("day")
    query = (sa.select(t.c.task, day, t.c.label, sa.func.count().label("count"))
             .where(t.c.predicted_at >= start, *_where(_filters(filters)))
             .group_by(t.c.task, day, t.c.label).order_by(t.c.task, day, t.c.label))
    with engine.connect() as conn:
        return [{"task": r.task, "day": r.day, "label": r.label, "count": r.count}
                for r in conn.execute(query)]


def model_versions(engine: Engine) -> list[dict[str, Any]]:
    """Every (task, model version) that has predictions: how many, how many live, first and last."""
    live = sa.func.sum(sa.case((LIVE_RECORD, 1), else_=0))
    query = (sa.select(t.c.task, t.c.model_version, sa.func.count().label("count"), live.label("live"),
                       sa.func.min(t.c.predicted_at).label("first"),
                       sa.func.max(t.c.predicted_at).label("last"))
             .group_by(t.c.task, t.c.model_version)
             .order_by(t.c.task, sa.func.max(t.c.predicted_at).desc(), t.c.model_version))
    with engine.connect() as conn:
        return [{"task": r.task, "model_version": r.model_version, "count": r.count,
                 "live_count": int(r.live or 0), "first_predicted_at": iso(r.first),
                 "last_predicted_at": iso(r.last)} for r in conn.execute(query)]
