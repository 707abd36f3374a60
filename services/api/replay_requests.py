"""``POST /api/v1/replays``: a request body read, checked and sent to the replay source as a message.

The body is read here (its fields, nulls, types); the request is built as ``wcml replay`` builds it
(``shared.replays.request_for``) and may name only known tasks and model versions (``shared.known``).
The run is kept in the API's read model as ``requested`` (``run_view.requested``) before the request
is sent, so ``GET /api/v1/replays/<id>`` finds it at once; a request the broker does not take is
withdrawn from it again and its ``PublishError`` propagates (a 503).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine

from services.api import run_view
from services.api.comparison import stored_versions
from services.api.filters import FilterError
from shared.broker import PublishError
from shared.known import Known, UnknownName
from shared.messages import ReplayRequest, ScoreRequest
from shared.replays import FILTER_FIELDS, LogFilter, ReplayRequestError, request_for, requested, shown

SendRequest = Callable[[ReplayRequest | ScoreRequest], None]  # a request upstream, as a message
BODY_FIELDS = (*FILTER_FIELDS, "tasks", "model_version", "created_by")


def request_of(body: Any, *, requested_by: str) -> ReplayRequest:
    """The request a JSON body asks for; ``ReplayRequestError`` says what is wrong with it."""
    if not isinstance(body, Mapping):
        raise ReplayRequestError("send a JSON object")
    unknown = set(body) - set(BODY_FIELDS)
    if unknown:
        raise ReplayRequestError(f"unknown field(s): {', '.join(sorted(unknown)[:5])}")
    nulls = sorted(k for k, v in body.items() if v is None)
    if nulls:
        raise ReplayRequestError(f"{nulls[0]} must not be null (leave it out instead)")
    tasks = body.get("tasks", [])
    if not isinstance(tasks, list):
        raise ReplayRequestError("tasks must be a list of task names")
    return request_for(LogFilter.of(body), tasks=tasks, model_version=body.get("model_version"),
                       created_by=body.get("created_by") or requested_by)


def request_run(engine: Engine, send: SendRequest, body: Any, requested_by: str,
                known: Known) -> dict[str, Any]:
    """Ask the replay source for a run; the answer is the run as the API now records it. A request
    that cannot run, or names what is not ``known``, is a ``FilterError`` and sends nothing."""
    try:
        request = request_of(body, requested_by=requested_by)
        known.check_replay(request.tasks, request.model_version, lambda task: stored_versions(engine, task))
    except (ReplayRequestError, UnknownName) as exc:
        raise FilterError(str(exc)) from None
    run = requested(request)
    run_view.requested(engine, run)
    try:
        send(request)
    except PublishError:
        run_view.withdrawn(engine, run.run_id)
        raise
    return shown(run)
