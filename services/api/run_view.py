"""Replay runs as the API and the dashboard show them: the API's read model ``api_replay_runs``.

Fed by the replay source's ``ReplayRun`` reports (queue ``runs.api``, ``handle``), and by the API
itself: a run it accepts is kept as ``requested`` (revision 0) before its request is sent, so the
run is there to read the moment ``POST /api/v1/replays`` answers. Each run keeps its highest
revision: a report that arrives late or twice never rolls it back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.api.filters import parse_limit
from services.api.reports import keep_newest, readable
from services.api.tables import api_replay_runs as t
from shared.broker.port import Delivery, Rejection
from shared.database import backend_of, once_per_backend
from shared.messages import ReplayRun
from shared.replays import run_of, shown, table_row

COLUMNS = tuple(c.name for c in t.columns if c.name != "id")


@once_per_backend
def _keep(backend):
    return backend.upsert(t, ["id"], updating=COLUMNS, newer="revision")


def keep(engine: Engine, runs: Iterable[ReplayRun]) -> None:
    """Each run's highest revision: of these, and of what the table holds."""
    keep_newest(engine, _keep, runs, key=lambda r: r.run_id, order=lambda r: r.revision, row=table_row)


def handle(engine: Engine, deliveries: list[Delivery]) -> list[Rejection]:
    """The consumer of ``runs.api``: keep every report; dead-letter one that is not a run."""
    runs, rejections = readable(deliveries, ReplayRun, table_row)
    keep(engine, runs)
    return rejections


def requested(engine: Engine, run: ReplayRun) -> None:
    """The API's own record of a run it accepted (revision 0), before the request is sent."""
    with engine.begin() as conn:
        conn.execute(backend_of(conn).insert_ignoring(t, ["id"]), [table_row(run)])


def withdrawn(engine: Engine, run_id: str) -> None:
    """A run whose request could not be sent: forgotten, unless the replay source reported it."""
    with engine.begin() as conn:
        conn.execute(t.delete().where(t.c.id == run_id, t.c.revision == 0))


def list_runs(engine: Engine, limit: int | str | None = None) -> list[dict[str, Any]]:
    """The newest runs first."""
    query = sa.select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(parse_limit(limit))
    with engine.connect() as conn:
        return [shown(run_of(row)) for row in conn.execute(query)]


def get_run(engine: Engine, replay_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == replay_id)).one_or_none()
    return shown(run_of(row)) if row is not None else None
