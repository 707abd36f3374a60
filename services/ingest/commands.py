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


def replay(engine, broker: Broker, stop: threading.Event, *, filters: dict[str, Any], tasks=(),
           model: str | None = None, rate: float | None = None, created_by: str | None = None,
           resume: str | None = None, quiet: bool = False, rules: tuple[Rule, ...] | None = None) -> int:
    """``rules``: route each event here and publish its task messages (else envelopes for the dispatcher)."""
    runs = ReplayRuns(engine)
    replayer = Replayer(EventLog(engine), broker, runs, rules=rules)
    if resume:
        try:
            run = runs.get(resume)
        except ReplayNotFound as exc:
            raise UserError(str(exc)) from None
    else:
        run = replayer.start(filters, tasks=tasks, model_version=model, created_by=created_by)
        print(f"replay {run.id}: {run.total} event(s) selected")
    with tqdm(total=run.total, initial=run.published, unit="event", desc=run.id, disable=quiet) as bar:
        run = replayer.run(run.id, stop, rate=rate, on_progress=bar.update)
    print(f"replay {run.id}: {run.state}, {run.published}/{run.total} published"
          + (f" (resume with: wcml replay --resume {run.id})" if run.state != "done" else ""))
    return 0 if run.state == "done" else 1
