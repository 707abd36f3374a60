"""Replay runs as the replay source records them: filters, progress (a position cursor) and state.

The replay source is the one reader and writer of ``replay_runs``; others learn of a run from its
reports (``run_reports.py``). Progress is committed after every confirmed page, so an interrupted
run resumes after the last page the broker confirmed. Every change raises the run's ``revision`` by
one in the same statement, and ``reported`` is the highest revision the broker has confirmed a report
of: a run with ``reported < revision`` still has a report to send.

The table is derived from ``ReplayRun``'s declaration and its stored extension ``StoredRun``
(migrations 0002 and 0011 create it).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from shared import records
from shared.database import backend_of
from shared.messages import ReplayRequest, ReplayRun
from shared.replays import RESUMABLE, requested, run_of, table_row
from shared.times import utcnow


@dataclass(frozen=True, kw_only=True)
class StoredRun(ReplayRun):
    """A run as the replay source keeps it: the run's fields, and the one only it has."""

    reported: int = records.integer(minimum=0, default=0)  # the highest revision confirmed reported


metadata = sa.MetaData()
replay_runs = records.table(
    "replay_runs", metadata, StoredRun,
    sa.Index("ix_replay_runs_created_at", "created_at"),
    sa.Index("ix_replay_runs_state", "state"),
    server_defaults={name: "0" for name in ("revision", "total", "published", "last_position")},  # 0002, 0011
)


class ReplayNotFound(LookupError):
    pass


class ReplayRuns:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._record = backend_of(engine).insert_ignoring(replay_runs, ["id"])

    def record(self, request: ReplayRequest, total: int, state: str) -> ReplayRun:
        """The run a request asks for (revision 1); a request seen before (a redelivery) keeps its
        first record, which comes back as it stands."""
        row = {**table_row(requested(request, revision=1, state=state, total=total)), "reported": 0}
        with self.engine.begin() as conn:
            conn.execute(self._record, [row])
        return self.get(request.run_id)

    def get(self, run_id: str) -> ReplayRun:
        with self.engine.connect() as conn:
            return self._get(conn, run_id)

    def _get(self, conn: sa.Connection, run_id: str) -> ReplayRun:
        row = conn.execute(sa.select(replay_runs).where(replay_runs.c.id == run_id)).one_or_none()
        if row is None:
            raise ReplayNotFound(f"no replay run {run_id!r}")
        return run_of(row)

    def _change(self, run_id: str, *where, **values) -> ReplayRun | None:
        """Apply ``values`` (one revision more) where the run matches ``where``; the run as it now
        stands, or None when it did not match."""
        with self.engine.begin() as conn:
            done = conn.execute(replay_runs.update().where(replay_runs.c.id == run_id, *where)
                                .values(revision=replay_runs.c.revision + 1, **values))
            return self._get(conn, run_id) if done.rowcount == 1 else None

    def claim(self, run_id: str) -> ReplayRun | None:
        """Move a resumable run to ``running``; None when it is done (or unknown)."""
        return self._change(run_id, replay_runs.c.state.in_(RESUMABLE), state="running", error=None)

    def requested(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(replay_runs.c.id).where(replay_runs.c.state == "requested")
                                     .order_by(replay_runs.c.created_at)).scalars())

    def advance(self, run_id: str, count: int, last_position: int) -> ReplayRun:
        return self._change(run_id, published=replay_runs.c.published + count, last_position=last_position)

    def finish(self, run_id: str, state: str, error: str | None = None) -> ReplayRun:
        values = {"state": state, "error": error}
        if state in ("done", "failed"):
            values["finished_at"] = utcnow()
        return self._change(run_id, **values)

    def unreported(self, limit: int = 100) -> list[ReplayRun]:
        """Runs whose latest revision the broker has not confirmed a report of, oldest first."""
        query = (sa.select(replay_runs).where(replay_runs.c.reported < replay_runs.c.revision)
                 .order_by(replay_runs.c.created_at).limit(limit))
        with self.engine.connect() as conn:
            return [run_of(row) for row in conn.execute(query)]

    def reported(self, run: ReplayRun) -> None:
        """The broker confirmed a report of ``run``'s revision (a lower one never lowers the mark)."""
        with self.engine.begin() as conn:
            conn.execute(replay_runs.update()
                         .where(replay_runs.c.id == run.run_id, replay_runs.c.reported < run.revision)
                         .values(reported=run.revision))
