"""Replay runs as the API and the dashboard show them: the run's record plus its progress.

The replay source (issue 4) owns ``replay_runs`` and updates ``published`` as it goes; the
store only reads it, so progress is whatever the source last committed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.store.filters import parse_limit
from services.store.records import iso
from services.store.tables import replay_runs as r

STATES = ("requested", "running", "paused", "done", "failed")  # "requested": asked for, not yet claimed


def progress(state: str, total: int, published: int) -> float:
    """Share of the run's events published, 0..1; a finished run with nothing to send is complete."""
    if total <= 0:
        return 1.0 if state == "done" else 0.0
    return round(min(max(published / total, 0.0), 1.0), 4)


def run_record(row: Any) -> dict[str, Any]:
    total, published = int(row.total or 0), int(row.published or 0)
    return {
        "id": row.id, "state": row.state, "created_at": iso(row.created_at), "created_by": row.created_by,
        "filters": row.filters if isinstance(row.filters, dict) else {},
        "model_version": row.model_version,
        "tasks": [str(t) for t in row.tasks] if isinstance(row.tasks, list) else [],
        "total": total, "published": published, "progress": progress(row.state, total, published),
        "last_position": int(row.last_position or 0), "finished_at": iso(row.finished_at),
        "error": row.error,
    }


def list_runs(engine: Engine, limit: int | str | None = None) -> list[dict[str, Any]]:
    """The newest runs first."""
    query = sa.select(r).order_by(r.c.created_at.desc(), r.c.id.desc()).limit(parse_limit(limit))
    with engine.connect() as conn:
        return [run_record(row) for row in conn.execute(query)]


def get_run(engine: Engine, replay_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(r).where(r.c.id == replay_id)).one_or_none()
    return run_record(row) if row is not None else None

