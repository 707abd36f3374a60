"""The query API and dashboard, declared in two parts: the HTTP service that reads the stored
predictions and its own read models and sends requests upstream (run this replay, score this issue
now) as messages; and ``views``, the consumers that keep those read models (``run_view``,
``action_view``, ``follow_view``) from the replay source's, the actions service's and the GitHub
follower's reports (``wcml api-views``, which ``wcml api`` starts beside it)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from services.api import action_view, follow_view, run_view
from services.api.rate_limit import RateLimit
from services.api.replay_requests import SendRequest
from services.api.routes import api_blueprint
from shared import topology
from shared.broker import Broker, ConsumeOptions, Outgoing
from shared.database import ping
from shared.known import Known
from shared.messages import CONTROL_EXCHANGE, CONTROL_KEYS, ReplayRequest, ScoreRequest, encode
from shared.service import Consumer, Service

VIEWS = ConsumeOptions(prefetch=500, max_batch=200)  # small reports, one upsert a batch


def api(engine: sa.Engine, api_keys: Sequence[str], broker: Broker, known: Known,
        rate_limit: RateLimit | None = None) -> Service:
    """The query API and dashboard; a replay asked for there (naming only what is ``known``) is a
    message to the replay source. Each key gets ``rate_limit`` (None: no limit)."""
    send = control_messages_to(broker)
    return Service("api", blueprint=lambda: api_blueprint(engine, api_keys, send, known, rate_limit),
                   ping=lambda: ping(engine))


def views(engine: sa.Engine) -> Service:
    """The read models' consumers: the newest report of each run, each action and each followed
    repository, upserted."""
    return Service("api-views", consumers=(
        Consumer(topology.RUNS_VIEW_QUEUE.name, lambda batch: run_view.handle(engine, batch), VIEWS),
        Consumer(topology.ACTIONS_VIEW_QUEUE.name, lambda batch: action_view.handle(engine, batch), VIEWS),
        Consumer(topology.FOLLOWS_VIEW_QUEUE.name, lambda batch: follow_view.handle(engine, batch), VIEWS)))


def control_messages_to(broker: Broker) -> SendRequest:
    """Requests upstream (run this replay, score this issue now) as messages on ``wcml.control``."""
    def send(request: ReplayRequest | ScoreRequest) -> None:
        message_id = request.run_id if isinstance(request, ReplayRequest) else request.request_id
        broker.publish([Outgoing(CONTROL_EXCHANGE, CONTROL_KEYS[type(request)], encode(request),
                                 message_id=message_id)])

    return send
