"""Dispatcher consumer: events in, one task message per matching task out, ack after confirm."""

from __future__ import annotations

import logging

from shared import metrics
from shared.broker import Broker, Delivery, Outgoing, Rejection
from shared.messages import TASKS_EXCHANGE, EventEnvelope, MessageError, decode, encode
from shared.routing import NotAnIssueEvent, Rule, route

log = logging.getLogger(__name__)
routed_total = metrics.counter("wcml_dispatcher_tasks_total", "Task messages published", ("task",))


class Dispatcher:
    def __init__(self, rules: tuple[Rule, ...], broker: Broker):
        self.rules = rules
        self.broker = broker

    def handle(self, deliveries: list[Delivery]) -> list[Rejection]:
        rejections, outgoing = [], []
        for d in deliveries:
            try:
                e = decode(d.body, EventEnvelope)
                tasks = route(self.rules, e)
            except (MessageError, NotAnIssueEvent) as exc:
                rejections.append(Rejection(d, str(exc)))
                continue
            for t in tasks:
                outgoing.append(Outgoing(TASKS_EXCHANGE, t.task, encode(t), message_id=t.task_id))
                routed_total.labels(t.task).inc()
        if outgoing:
            self.broker.publish(outgoing)
        return rejections
