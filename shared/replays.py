"""Replays: the contract between whoever asks for one and the replay source (ingest) that runs it.

A replay is asked for with a ``ReplayRequest`` message on ``wcml.control`` (the query API sends one
for the dashboard and ``POST /api/v1/replays``). The replay source records it in ``replay_runs``,
republishes the selected slice of the event log and advances the run there after every confirmed
page. That table belongs to the replay source: it alone writes it; the query API reads it to show
progress. Run ids, states and filters are defined here and nowhere else.
"""

from __future__ import annotations

import getpass
import re
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from shared.errors import UserError
from shared.messages import ReplayRequest
from shared.times import TimeFormatError, parse_time, utcnow

STATES = ("requested", "running", "paused", "done", "failed")  # requested: asked for, not yet taken
RESUMABLE = ("requested", "running", "paused", "failed")
FILTER_HELP = {
    "from_position": "first log position (inclusive)", "to_position": "last log position (inclusive)",
    "since": "received at or after (ISO 8601)", "until": "received before (ISO 8601)",
    "repo": "owner/name", "event": "GitHub event, e.g. issues", "action": "event action, e.g. opened",
}
FILTER_FIELDS = tuple(FILTER_HELP)
REQUEST_FIELDS = (*FILTER_FIELDS, "tasks", "model_version", "created_by")
NAME = re.compile(r"^[A-Za-z0-9._:+@=/-]{1,255}$")
MAX_POSITION = 2**62

metadata = sa.MetaData()
replay_runs = sa.Table(
    "replay_runs", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("filters", sa.JSON, nullable=False),
    sa.Column("model_version", sa.String(64)),
    sa.Column("tasks", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("published", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_position", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.Index("ix_replay_runs_created_at", "created_at"),
    sa.Index("ix_replay_runs_state", "state"),
)


class ReplayRequestError(UserError, ValueError):
    """A replay request (API body or command line) that cannot be run; the message is one line."""


def new_run_id() -> str:
    return f"r-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def check_filters(values: Mapping[str, Any]) -> dict[str, Any]:
    """The filters that are set, checked; times become ISO 8601 UTC strings (JSON-storable)."""
    out: dict[str, Any] = {}
    for key in FILTER_FIELDS:
        value = values.get(key)
        if value is None:
            continue
        if key in ("from_position", "to_position"):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_POSITION:
                raise ReplayRequestError(f"{key} must be a positive integer")
        elif key in ("since", "until"):
            try:
                value = parse_time(value).isoformat()
            except TimeFormatError as exc:
                raise ReplayRequestError(f"{key}: {exc}") from None
        elif not isinstance(value, str) or not NAME.match(value):
            raise ReplayRequestError(f"{key} must be a short name")
        out[key] = value
    return out


def request_from(body: Any, *, requested_by: str) -> ReplayRequest:
    """A replay request as the dashboard, a script or the command line sends it, checked."""
    if not isinstance(body, Mapping):
        raise ReplayRequestError("send a JSON object")
    unknown = set(body) - set(REQUEST_FIELDS)
    if unknown:
        raise ReplayRequestError(f"unknown field(s): {', '.join(sorted(unknown)[:5])}")
    nulls = sorted(k for k, v in body.items() if v is None)
    if nulls:
        raise ReplayRequestError(f"{nulls[0]} must not be null (leave it out instead)")
    for key in ("model_version", "created_by"):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or not NAME.match(value)):
            raise ReplayRequestError(f"{key} must be a short name")
    tasks = body.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(t, str) and NAME.match(t) for t in tasks):
        raise ReplayRequestError("tasks must be a list of task names")
    return ReplayRequest(run_id=new_run_id(), filters=check_filters(body), tasks=list(tasks),
                         model_version=body.get("model_version"),
                         created_by=body.get("created_by") or requested_by,
                         requested_at=utcnow().isoformat())
