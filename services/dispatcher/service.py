"""The dispatcher, declared: logged events in, one task message per routed task out."""

from __future__ import annotations

from pathlib import Path

from services.dispatcher.worker import Dispatcher
from shared import topology
from shared.broker import Broker, ConsumeOptions
from shared.event_routes import load_rules, tasks_of
from shared.service import Consumer, Service

# Large batches: routing is cheap, and one confirm wait covers a whole batch of task messages.
OPTIONS = ConsumeOptions(prefetch=1000, max_batch=500)


def routed_tasks(routes_file: Path | None) -> list[str]:
    return tasks_of(load_rules(routes_file))


def declare(broker: Broker, routes_file: Path | None) -> Service:
    rules = load_rules(routes_file)
    dispatcher = Dispatcher(rules, broker)
    return Service("dispatcher", tasks=tuple(tasks_of(rules)),
                   consumers=(Consumer(topology.EVENTS_QUEUE.name, dispatcher.handle, OPTIONS),))
