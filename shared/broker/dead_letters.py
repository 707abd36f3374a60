"""Dead letters: what a consumer rejected for good, with its reason, kept in ``wcml.dead``.

The protocol is ours end to end: ``dead_letter`` writes the reason and the origin into
``x-wcml-*`` headers; ``listing`` and ``requeue`` read them back (or RabbitMQ's own ``x-death``
record, for a message the broker dead-lettered over its delivery limit).
"""

from __future__ import annotations

from typing import Any

from shared import topology
from shared.broker.port import Broker, Delivery, Outgoing, Rejection
from shared.messages import DEAD_EXCHANGE


def dead_letter(rejection: Rejection, queue: str) -> Outgoing:
    d = rejection.delivery
    headers = {k: v for k, v in (d.headers or {}).items() if not k.startswith("x-wcml-")}
    headers.update({
        "x-wcml-reason": rejection.reason[:500],
        "x-wcml-queue": queue,
        "x-wcml-exchange": d.exchange,
        "x-wcml-routing-key": d.routing_key,
    })
    return Outgoing(DEAD_EXCHANGE, queue, d.body, headers, d.message_id)


def origin(d: Delivery) -> tuple[str, str]:
    """Where a dead letter came from: our own headers, else RabbitMQ's x-death record."""
    if "x-wcml-exchange" in d.headers:
        return d.headers["x-wcml-exchange"], d.headers.get("x-wcml-routing-key", "")
    death = _death(d)
    keys = death.get("routing-keys") or [""]
    return death.get("exchange", ""), keys[0]


def listing(broker: Broker, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` dead letters, described; they are left in place."""
    messages = broker.get(topology.DEAD_QUEUE.name, limit)
    described = [{"queue": d.headers.get("x-wcml-queue", _death(d).get("queue")),
                  "reason": d.headers.get("x-wcml-reason", _death(d).get("reason")),
                  "routing_key": origin(d)[1], "message_id": d.message_id, "bytes": len(d.body)}
                 for d in messages]
    if messages:
        broker.settle(messages, requeue=True)
    return described


def requeue(broker: Broker, limit: int) -> int:
    """Send dead letters back where they came from; return how many."""
    moved = 0
    # Only what is there now: a message that fails again comes back behind us and must not loop.
    limit = min(limit, broker.queue_depth(topology.DEAD_QUEUE.name))
    while moved < limit:
        batch = broker.get(topology.DEAD_QUEUE.name, min(100, limit - moved))
        if not batch:
            break
        broker.publish([Outgoing(*origin(d), d.body, _plain_headers(d), d.message_id) for d in batch])
        broker.settle(batch, requeue=False)
        moved += len(batch)
    return moved


def _death(d: Delivery) -> dict[str, Any]:
    return (d.headers.get("x-death") or [{}])[0]


def _plain_headers(d: Delivery) -> dict[str, Any]:
    return {k: v for k, v in d.headers.items() if not k.startswith("x-")}
