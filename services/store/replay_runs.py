"""Replay runs as the API and the dashboard show them: the run's record plus its progress.

The replay source (issue 4) owns ``replay_runs`` and updates ``published`` as it goes; the
store only reads it, so progress is whatever the source last committed.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.store.filters import FilterError, parse_limit
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



NAME = re.compile(r"^[A-Za-z0-9._:+@=/-]{1,255}$")
REQUEST_FIELDS = {"from_position", "to_position", "since", "until", "repo", "event", "action", "tasks",
                  "model_version", "created_by"}


def _check_request(body: Any) -> dict[str, Any]:
    """A replay request as the dashboard or a script sends it; one-line FilterError otherwise."""
    if not isinstance(body, dict):
        raise FilterError("send a JSON object")
    unknown = set(body) - REQUEST_FIELDS
    if unknown:
        raise FilterError(f"unknown field(s): {', '.join(sorted(unknown)[:5])}")
    nulls = sorted(k for k, v in body.items() if v is None)
    if nulls:
        raise FilterError(f"{nulls[0]} must not be null (leave it out instead)")
    for key in ("from_position", "to_position"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1
                                  or value > 2**62):
            raise FilterError(f"{key} must be a positive integer")
    for key in ("since", "until"):
        value = body.get(key)
        if value is not None:
            try:
                parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise FilterError(f"{key} is not an ISO 8601 time") from None
            body = {**body, key: (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()}
    for key in ("repo", "event", "action", "model_version", "created_by"):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or not NAME.match(value)):
            raise FilterError(f"{key} must be a short name")
    tasks = body.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(t, str) and NAME.match(t) for t in tasks):
        raise FilterError("tasks must be a list of task names")
    return body


def request_run(engine: Engine, body: Any, requested_by: str) -> dict[str, Any]:
    """Queue a replay (state ``requested``); the replay source beside the relay claims and runs it."""
    body = _check_request(body)
    keys = ("from_position", "to_position", "since", "until", "repo", "event", "action")
    filters = {k: body[k] for k in keys if body.get(k) is not None}
    run_id = f"r-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        conn.execute(r.insert().values(
            id=run_id, created_at=datetime.now(UTC), created_by=body.get("created_by") or requested_by,
            filters=filters, model_version=body.get("model_version"), tasks=list(body.get("tasks", [])),
            state="requested", total=0, published=0, last_position=0))
    return get_run(engine, run_id)
