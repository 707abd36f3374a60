"""Replay runs as the replay source records them: filters, progress (a position cursor) and state.

The table is the pipeline's one control table: the query API may insert a run in
state ``requested`` (a user asked for it on the dashboard), and the replay source
claims and executes it. Progress is committed after every confirmed page, so an
interrupted run resumes after the last page the broker confirmed.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shared.database import utcnow
from shared.replay_table import replay_runs

RESUMABLE = ("requested", "running", "paused", "failed")


class ReplayNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ReplayRun:
    id: str
    created_by: str
    filters: dict[str, Any]
    model_version: str | None
    tasks: list[str]
    state: str
    total: int
    published: int
    last_position: int


def new_run_id() -> str:
    return f"r-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class ReplayRuns:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def create(self, filters: dict[str, Any], total: int, *, tasks=(), model_version=None,
               created_by: str | None = None, state: str = "running") -> ReplayRun:
        row = {"id": new_run_id(), "created_at": utcnow(), "created_by": created_by or default_user(),
               "filters": filters, "model_version": model_version, "tasks": list(tasks), "state": state,
               "total": total, "published": 0, "last_position": 0}
        with self.engine.begin() as conn:
            conn.execute(replay_runs.insert().values(row))
        return self.get(row["id"])

    def get(self, run_id: str) -> ReplayRun:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(replay_runs).where(replay_runs.c.id == run_id)).one_or_none()
        if row is None:
            raise ReplayNotFound(f"no replay run {run_id!r}")
        return ReplayRun(id=row.id, created_by=row.created_by, filters=dict(row.filters),
                         model_version=row.model_version, tasks=list(row.tasks), state=row.state,
                         total=row.total, published=row.published, last_position=row.last_position)

    def claim(self, run_id: str) -> bool:
        """Move a resumable run to ``running``; False when another runner holds it or it is done."""
        with self.engine.begin() as conn:
            done = conn.execute(replay_runs.update()
                                .where(replay_runs.c.id == run_id, replay_runs.c.state.in_(RESUMABLE))
                                .values(state="running", error=None))
        return done.rowcount == 1

    def requested(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(replay_runs.c.id).where(replay_runs.c.state == "requested")
                                     .order_by(replay_runs.c.created_at)).scalars())

    def set_total(self, run_id: str, total: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(replay_runs.update().where(replay_runs.c.id == run_id).values(total=total))

    def advance(self, run_id: str, count: int, last_position: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(replay_runs.update().where(replay_runs.c.id == run_id)
                         .values(published=replay_runs.c.published + count, last_position=last_position))

    def finish(self, run_id: str, state: str, error: str | None = None) -> None:
        values = {"state": state, "error": error}
        if state in ("done", "failed"):
            values["finished_at"] = utcnow()
        with self.engine.begin() as conn:
            conn.execute(replay_runs.update().where(replay_runs.c.id == run_id).values(**values))
