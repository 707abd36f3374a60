"""Dispatcher consumer: events in, a task message per matching task out (a consumed batch's for one
task together, in batches: ``shared.event_routes.task_messages``), ack after confirm."""

from __future__ import annotations

import logging

from shared import metrics
from shared.broker import Broker, Delivery, Rejection
from shared.event_routes import NotAnIssueEvent, Rule, route, task_messages
from shared.messages import EventEnvelope, MessageError, decode

log = logging.getLogger(__name__)
routed_total = metrics.counter("wcml_dispatcher_routed_tasks_total",
                               "Tasks routed and published (one per event and matching task)", ("task",))


class Dispatcher:
    def __init__(self, rules: tuple[Rule, ...], broker: Broker):
        self.rules = rules
        self.broker = broker

    def handle(self, deliveries: list[Delivery]) -> list[Rejection]:
        rejections, routed = [], []
        for d in deliveries:
            try:
                e = decode(d.body, EventEnvelope)
                tasks = route(self.rules, e)
            except (MessageError, NotAnIssueEvent) as exc:
                rejections.append(Rejection(d, str(exc)))
                continue
            for t in tasks:
                routed.append(t)
                routed_total.labels(t.task).inc()
        if routed:
            self.broker.publish(task_messages(routed))
        return rejections
