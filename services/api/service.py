"""The query API and dashboard, declared: an HTTP service that reads the stored predictions and sends
requests upstream (run this replay, score this issue now) as messages."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from services.api.replay_requests import SendRequest
from services.api.routes import api_blueprint
from shared.broker import Broker, Outgoing
from shared.database import ping
from shared.known import Known
from shared.messages import CONTROL_EXCHANGE, CONTROL_KEYS, ReplayRequest, ScoreRequest, encode
from shared.service import Service


def api(engine: sa.Engine, api_keys: Sequence[str], broker: Broker, known: Known) -> Service:
    """The query API and dashboard; a replay asked for there (naming only what is ``known``) is a
    message to the replay source."""
    send = control_messages_to(broker)
    return Service("api", blueprint=lambda: api_blueprint(engine, api_keys, send, known),
                   ping=lambda: ping(engine))


def control_messages_to(broker: Broker) -> SendRequest:
    """Requests upstream (run this replay, score this issue now) as messages on ``wcml.control``."""
    def send(request: ReplayRequest | ScoreRequest) -> None:
        message_id = request.run_id if isinstance(request, ReplayRequest) else request.request_id
        broker.publish([Outgoing(CONTROL_EXCHANGE, CONTROL_KEYS[type(request)], encode(request),
                                 message_id=message_id)])

    return send
