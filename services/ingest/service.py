"""Ingest, declared in two parts: the webhook endpoint (HTTP workers, no broker) and the relay
beside it (the outbox relay, the replay source, and issues fetched from GitHub to be scored now)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa

from services.ingest.app import ingest_blueprint
from services.ingest.event_log import EventLog
from services.ingest.github.score_requests import ScoreRequests
from services.ingest.outbox_relay import OutboxRelay
from services.ingest.replay import Replayer, ReplaySource
from services.ingest.replay_runs import ReplayRuns
from shared import topology
from shared.broker import Broker, ConsumeOptions
from shared.event_routes import load_rules, tasks_of
from shared.service import Consumer, Service

REPLAY_REQUESTS = ConsumeOptions(prefetch=10, max_batch=10)


def webhooks(engine: sa.Engine, secrets: Sequence[str], max_body_bytes: int,
             on_append: Callable[[], None] = lambda: None) -> Service:
    event_log = EventLog(engine)
    return Service("ingest", ping=event_log.ping,
                   blueprint=lambda: ingest_blueprint(event_log, secrets, max_body_bytes, on_append))


def relay(engine: sa.Engine, broker: Broker, routes_file: Path | None, github_token: str | None,
          github_url: str) -> Service:
    """The outbox relay, the replay source (routing replayed events itself, by ``routes_file``), and
    "score this issue now" (GitHub, with ``github_token``)."""
    event_log = EventLog(engine)
    outbox = OutboxRelay(event_log, broker)
    rules = load_rules(routes_file)
    replays = ReplaySource(Replayer(event_log, broker, ReplayRuns(engine), rules=rules))
    scores = ScoreRequests(engine, github_token, github_url)
    return Service("relay", wake=outbox.wake, tasks=tuple(tasks_of(rules)),
                   loops=(("relay", outbox.run), ("replays", replays.serve)),
                   consumers=(Consumer(topology.REPLAYS_QUEUE.name, replays.handle, REPLAY_REQUESTS),
                              Consumer(topology.SCORES_QUEUE.name, scores.handle, REPLAY_REQUESTS)))
