"""GitHub followers as the dashboard shows them: the API's read model ``api_follows``.

Fed by the follower's ``FollowReport`` reports (queue ``follows.api``, ``handle``), one row per
followed repository; the newest report (by ``reported_at``) is kept, so one that arrives late or twice
never moves a repository back. The lag shown is the time since the last finished tick began.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.api.reports import keep_newest, readable
from services.api.tables import api_follows as t
from shared import records
from shared.broker.port import Delivery, Rejection
from shared.database import as_utc, once_per_backend
from shared.messages import FollowReport

COLUMNS = tuple(c.name for c in t.columns if c.name != "repo")
table_row = records.row_of(FollowReport, times=True)


@once_per_backend
def _keep(backend):
    return backend.upsert(t, ["repo"], updating=COLUMNS, newer="reported_at")


def keep(engine: Engine, reports: Iterable[FollowReport]) -> None:
    """Each repository's newest report: of these, and of what the table holds."""
    keep_newest(engine, _keep, reports, key=lambda r: r.repo, order=lambda r: table_row(r)["reported_at"],
                row=table_row)


def handle(engine: Engine, deliveries: list[Delivery]) -> list[Rejection]:
    """The consumer of ``follows.api``: keep every report; dead-letter one that is not a follower's."""
    reports, rejections = readable(deliveries, FollowReport, table_row)
    keep(engine, reports)
    return rejections


def list_follows(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    """Every followed repository by name, with its lag in seconds at ``now`` (None before a tick)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.repo)).all()
    shown = []
    for row in rows:
        synced = as_utc(row.synced_at)
        shown.append({"repo": row.repo, "cursor": row.cursor, "ticks": row.ticks, "appended": row.appended,
                      "synced_at": synced, "reported_at": as_utc(row.reported_at),
                      "lag_seconds": None if synced is None else max(0.0, (now - synced).total_seconds())})
    return shown
