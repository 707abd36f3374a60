"""``wcml replay``: start or resume a recorded replay run from the command line, with a progress bar."""

from __future__ import annotations

import threading
from typing import Any

from tqdm import tqdm

from services.ingest.event_log import EventLog
from services.ingest.replay import Replayer
from services.ingest.replay_runs import ReplayNotFound, ReplayRuns
from shared.broker import Broker
from shared.errors import UserError
from shared.event_routes import Rule
from shared.replays import LogFilter, default_user, request_for


def replay(engine, broker: Broker, stop: threading.Event, *, filters: dict[str, Any], tasks=(),
           model: str | None = None, rate: float | None = None, created_by: str | None = None,
           resume: str | None = None, quiet: bool = False, rules: tuple[Rule, ...] | None = None) -> int:
    """``filters``: the flags' values (``LogFilter.of`` checks them); the run is asked for as the API asks
    (``request_for``), recorded and run here. ``rules``: route each event here and publish its task
    messages (else envelopes for the dispatcher)."""
    runs = ReplayRuns(engine)
    replayer = Replayer(EventLog(engine), broker, runs, rules=rules)
    if resume:
        try:
            run = runs.get(resume)
        except ReplayNotFound as exc:
            raise UserError(str(exc)) from None
    else:
        request = request_for(LogFilter.of(filters), tasks=list(tasks), model_version=model or None,
                              created_by=created_by or default_user())
        run = replayer.start(request)
        print(f"replay {run.run_id}: {run.total} event(s) selected")
    with tqdm(total=run.total, initial=run.published, unit="event", desc=run.run_id, disable=quiet) as bar:
        run = replayer.run(run.run_id, stop, rate=rate, on_progress=bar.update)
    print(f"replay {run.run_id}: {run.state}, {run.published}/{run.total} published"
          + (f" (resume with: wcml replay --resume {run.run_id})" if run.state != "done" else ""))
    return 0 if run.state == "done" else 1
