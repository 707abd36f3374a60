"""Results consumer: each live prediction through the policy, into the ledger, then onto GitHub.

Replays and imported history never act: their results are read and dropped here (they also arrive
on ``wcml.results``, which every prediction crosses). A malformed result is dead-lettered with its
reason. Everything a prediction asks for is claimed in one transaction per batch before anything is
sent, and each action is settled as soon as GitHub has answered. The records are reported
(``reports.py``) before the batch is acknowledged.
"""

from __future__ import annotations

import logging

from services.actions.effects import Effects
from services.actions.ledger import Ledger
from services.actions.policy import Intent, Policy
from services.actions.reports import Report
from shared import metrics
from shared.broker.port import Delivery, Rejection
from shared.messages import Prediction, decode_each

log = logging.getLogger(__name__)

SEEN = metrics.counter("wcml_actions_results_total", "Results read by the actions service, by what they were",
                       ("source",))
SETTLED = metrics.counter("wcml_actions_settled_total", "Actions settled, by task, action and state",
                          ("task", "action", "state"))


class ActionsWorker:
    def __init__(self, ledger: Ledger, policy: Policy, effects: Effects | None, report: Report):
        """``effects`` None: the dry run (what would be done is recorded, nothing is sent)."""
        self.ledger = ledger
        self.policy = policy
        self.effects = effects
        self.report = report

    def handle(self, deliveries: list[Delivery]) -> list[Rejection]:
        wanted: list[tuple[Prediction, Intent]] = []
        rejections = []
        for delivery in deliveries:
            for item in decode_each(delivery.body, Prediction):  # one prediction, or a batch of them
                if item.error is not None:
                    reason = " ".join(item.error.split())[:300]
                    rejections.append(Rejection(delivery.carrying(item.alone), reason))
                    continue
                p = item.message
                SEEN.labels(p.source if not p.replay_id else "replay").inc()
                if p.source == "live" and p.replay_id is None:
                    wanted.extend((p, intent) for intent in self.policy.intents(p))
        live = self.effects is not None
        claims = self.ledger.claim(wanted, live=live)
        self.report(self.ledger.recorded(wanted, live=live))
        settled = []
        for claim in claims:
            state, reason = self.effects.apply(claim)
            settled.append(self.ledger.settle(claim, state, reason))
            SETTLED.labels(claim.task, claim.kind, state).inc()
            log.info("%s %s on %s#%d: %s (%s)", claim.task, claim.kind, claim.repo, claim.number, state,
                     reason)
        self.report(settled)
        return rejections
