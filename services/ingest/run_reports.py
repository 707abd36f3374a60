"""Reports of replay runs: each change of a run, as a ``ReplayRun`` message on ``wcml.state``.

The replay source reports a run after every confirmed page and at every change of state (``report``),
and marks the revision reported once the broker confirms it. A report the broker did not take (it was
down, the process died between the commit and the report) is sent again by ``sweep``: the replay
source sweeps at start and every ``SWEEP_EVERY`` seconds while it serves, so every run's last
revision, its final state included, reaches the readers. A request for a run already recorded (a
redelivery) reports the run again as it stands. Reports carry the message id ``<run id>@<revision>``;
a reader keeps the highest revision, so one sent twice or late changes nothing.
"""

from __future__ import annotations

import logging

from services.ingest.replay_runs import ReplayRuns
from shared.broker import Broker, Outgoing, PublishError
from shared.messages import STATE_EXCHANGE, STATE_KEYS, ReplayRun, encode

log = logging.getLogger(__name__)

SWEEP_EVERY = 5.0


def outgoing(run: ReplayRun) -> Outgoing:
    return Outgoing(STATE_EXCHANGE, STATE_KEYS[ReplayRun], encode(run),
                    message_id=f"{run.run_id}@{run.revision}")


class RunReports:
    def __init__(self, broker: Broker, runs: ReplayRuns):
        self.broker, self.runs = broker, runs

    def announce(self, run: ReplayRun) -> None:
        """Report one revision now, or raise ``PublishError`` (for a caller that must not go on)."""
        self.broker.publish([outgoing(run)])
        self.runs.reported(run)

    def report(self, run: ReplayRun) -> None:
        """Report one revision; one the broker does not take is left to ``sweep``."""
        try:
            self.announce(run)
        except PublishError as exc:
            log.warning("replay %s: revision %d not reported yet (%s)", run.run_id, run.revision,
                        type(exc).__name__)

    def sweep(self) -> int:
        """Report every run whose last revision is not reported yet; how many were."""
        unreported = self.runs.unreported()
        if not unreported:
            return 0
        self.broker.publish([outgoing(run) for run in unreported])
        for run in unreported:
            self.runs.reported(run)
        return len(unreported)
