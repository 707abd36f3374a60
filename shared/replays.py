"""Replays: the contract between whoever asks for one and the replay source (ingest) that runs it.

One filter type, ``LogFilter`` (a slice of the event log), and one run type, ``ReplayRun``
(``shared.messages``: it travels as it is), serve the replay source, ``wcml replay`` and the query
API alike; a run's filters are the filter's JSON form (``LogFilter.to_json``). A run's row
(``table_row``, ``run_of``), its JSON (``shown``) and that JSON's schema (``SHOWN_SCHEMA``) are
derived from its declaration (``shared.records``).

- Asking: ``request_for`` builds the ``ReplayRequest`` message, checked, whoever asks (the command
  line from its flags, the API from a request body it has parsed). The API sends it on
  ``wcml.control``; ``wcml replay`` hands it to a replay source of its own.
- Running: the replay source records the run in its own table, republishes the slice and advances
  the run after every confirmed page. It reports each change (a ``ReplayRun`` with a higher
  ``revision``) on ``wcml.state``; whoever shows runs keeps the highest revision of each (the query
  API's read model), so a late or repeated report never rolls a run back.
"""

from __future__ import annotations

import dataclasses
import getpass
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import records
from shared.errors import UserError
from shared.messages import ReplayRequest, ReplayRun
from shared.times import TimeFormatError, parse_time, utcnow

STATES = records.spec_of(ReplayRun, "state").enum  # requested: asked for, not yet taken
RESUMABLE = ("requested", "running", "paused", "failed")
FILTER_HELP = {
    "from_position": "first log position (inclusive)", "to_position": "last log position (inclusive)",
    "since": "received at or after (ISO 8601)", "until": "received before (ISO 8601)",
    "repo": "owner/name", "event": "GitHub event, e.g. issues", "action": "event action, e.g. opened",
}
FILTER_FIELDS = tuple(FILTER_HELP)
NAME = re.compile(r"^[A-Za-z0-9._:+@=/-]{1,255}$")
MAX_POSITION = 2**62


class ReplayRequestError(UserError, ValueError):
    """A replay request (API body or command line) that cannot be run; the message is one line."""


@dataclass(frozen=True)
class LogFilter:
    """A slice of the event log: what a replay republishes, what ``wcml dataset build`` reads. Every
    field set narrows it; none set is the whole log. Times are aware UTC datetimes."""

    from_position: int | None = None
    to_position: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    repo: str | None = None
    event: str | None = None
    action: str | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> LogFilter:
        """The filter ``values`` name (its JSON form, command-line flags or a request body; absent or
        None is unset), checked: ``ReplayRequestError`` names the first unusable one. Times may be
        ISO 8601 strings or datetimes; other names are ignored."""
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
                    value = parse_time(value.isoformat() if isinstance(value, datetime) else value)
                except TimeFormatError as exc:
                    raise ReplayRequestError(f"{key}: {exc}") from None
            elif not isinstance(value, str) or not NAME.match(value):
                raise ReplayRequestError(f"{key} must be a short name")
            out[key] = value
        return cls(**out)

    def to_json(self) -> dict[str, Any]:
        """The fields that are set, times as ISO 8601 UTC strings: how runs and requests carry it."""
        return {k: v.isoformat() if isinstance(v, datetime) else v
                for k, v in dataclasses.asdict(self).items() if v is not None}


def new_run_id() -> str:
    return f"r-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _name(key: str, value: Any) -> None:
    if not isinstance(value, str) or not NAME.match(value):
        raise ReplayRequestError(f"{key} must be a short name")


def request_for(selection: LogFilter, *, tasks: Sequence[str] = (), model_version: str | None = None,
                created_by: str) -> ReplayRequest:
    """The one way a replay is asked for (the command line and the API): a new run id, the filter's
    JSON form, and names checked (``ReplayRequestError``). Whether the tasks and model version are
    known is the asker's check (``shared.known``) and the replay source's."""
    if isinstance(tasks, str) or not all(isinstance(t, str) and NAME.match(t) for t in tasks):
        raise ReplayRequestError("tasks must be a list of task names")
    if model_version is not None:
        _name("model_version", model_version)
    _name("created_by", created_by)
    return ReplayRequest(run_id=new_run_id(), filters=selection.to_json(), tasks=list(tasks),
                         model_version=model_version, created_by=created_by,
                         requested_at=utcnow().isoformat())


# -- runs ------------------------------------------------------------------------------------------

def requested(request: ReplayRequest, *, revision: int = 0, state: str = "requested", total: int = 0,
              error: str | None = None) -> ReplayRun:
    """The run a request asks for, before any event is published. Revision 0 is the asker's own
    record (the API's, made before it sends the request): anything the replay source reports wins."""
    finished = utcnow().isoformat() if state in ("done", "failed") else None
    return ReplayRun(run_id=request.run_id, revision=revision, state=state, created_at=request.requested_at,
                     created_by=request.created_by, filters=dict(request.filters),
                     model_version=request.model_version, tasks=list(request.tasks), total=total,
                     published=0, last_position=0, finished_at=finished, error=error)


run_of = records.message_of(ReplayRun)
"""A run from a table row of the run's fields (the replay source's table, the API's read model)."""

table_row = records.row_of(ReplayRun, times=True)
"""A run as its tables take it, by column name (its ``run_id`` is ``id``), times as aware datetimes:
``TimeFormatError`` where one does not read."""

_json = records.json_of(ReplayRun)


def progress(state: str, total: int, published: int) -> float:
    """Share of the run's events published, 0..1; a finished run with nothing to send is complete."""
    if total <= 0:
        return 1.0 if state == "done" else 0.0
    return round(min(max(published / total, 0.0), 1.0), 4)


def shown(run: ReplayRun) -> dict[str, Any]:
    """A run as the API, the dashboard and ``wcml replay`` show it: its declared fields shown (all but
    ``revision``; times ISO 8601 with ``Z``) and its ``progress``."""
    return {**_json(table_row(run)), "progress": progress(run.state, run.total, run.published)}


def _shown_schema() -> dict[str, Any]:
    declared = records.schema_of(ReplayRun)
    required = list(declared["required"])
    required.insert(required.index("published") + 1, "progress")
    progress_property = {"type": "number", "minimum": 0, "maximum": 1, "description": "published / total."}
    return {**declared, "required": required, "properties": {**declared["properties"],
                                                             "progress": progress_property}}


SHOWN_SCHEMA = _shown_schema()
"""The OpenAPI 3.0 schema of ``shown``'s output: the run's declared fields shown (``records.schema_of``)
and ``progress``."""
