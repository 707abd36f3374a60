"""Replay runs as the API and the dashboard show them: the replay source's record plus progress.

The replay source (ingest) alone writes ``replay_runs``; the store reads it. A new run is asked
for with a ``ReplayRequest`` message, which ``request_run`` checks (its fields, and that it names
only known tasks and model versions: ``shared.known``) and hands to the broker.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.api.comparison import stored_versions
from services.api.filters import FilterError, parse_limit
from shared.known import Known, UnknownName
from shared.messages import ReplayRequest, ScoreRequest
from shared.replays import ReplayRequestError, replay_runs, request_from
from shared.times import iso, parse_time

SendRequest = Callable[[ReplayRequest | ScoreRequest], None]  # a request upstream, as a message


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
    r = replay_runs
    query = sa.select(r).order_by(r.c.created_at.desc(), r.c.id.desc()).limit(parse_limit(limit))
    with engine.connect() as conn:
        return [run_record(row) for row in conn.execute(query)]


def get_run(engine: Engine, replay_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(replay_runs).where(replay_runs.c.id == replay_id)).one_or_none()
    return run_record(row) if row is not None else None


def request_run(engine: Engine, send: SendRequest, body: Any, requested_by: str,
                known: Known) -> dict[str, Any]:
    """Ask the replay source for a run; the answer is the run as it stands until the source takes it.
    A request that cannot run, or names what is not ``known``, is a ``FilterError`` and sends nothing."""
    try:
        request = request_from(body, requested_by=requested_by)
        known.check_replay(request.tasks, request.model_version, lambda task: stored_versions(engine, task))
    except (ReplayRequestError, UnknownName) as exc:
        raise FilterError(str(exc)) from None
    send(request)
    return run_record(SimpleNamespace(  # the run as a replay_runs row will hold it
        id=request.run_id, state="requested", created_by=request.created_by,
        created_at=parse_time(request.requested_at), filters=request.filters,
        model_version=request.model_version, tasks=request.tasks, total=0, published=0, last_position=0,
        finished_at=None, error=None))
