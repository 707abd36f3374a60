"""The actions service, declared: live results in, labels, milestones, comments and closing out."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa

from services.actions.effects import Effects
from services.actions.ledger import Ledger
from services.actions.policy import load_policy
from services.actions.reports import to_broker
from services.actions.worker import ActionsWorker
from shared import topology
from shared.broker import Broker, ConsumeOptions
from shared.github import GitHubClient
from shared.service import Consumer, Service

log = logging.getLogger(__name__)

# Small batches: each action is a few GitHub requests, and an action is settled as soon as it is done.
OPTIONS = ConsumeOptions(prefetch=200, max_batch=50)


def declare(engine: sa.Engine, broker: Broker, policy_file: Path | None,
            client: GitHubClient | None) -> Service:
    """``client`` None: the dry run. The policy is read (and checked) at start; records are reported
    to ``broker``."""
    policy = load_policy(policy_file)
    mode = "live: acting on GitHub" if client is not None else "dry run: recording what it would do"
    log.info("actions %s, %d rule(s) from %s", mode, len(policy.rules), policy.source)
    worker = ActionsWorker(Ledger(engine), policy, Effects(client) if client is not None else None,
                           to_broker(broker))
    queue = topology.ACTIONS_QUEUE
    return Service("actions", consumers=(Consumer(queue.name, worker.handle, OPTIONS),), queues=(queue,))
