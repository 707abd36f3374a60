"""What a service is, declared once: the queues it consumes (handler and batch settings), the loops
it runs beside them, and its HTTP blueprint.

Each service builds its ``Service`` in its own ``service.py`` from the adapters it is handed; the
distributed commands (one service a process) and the embedded mode (all in one process) are two
runners of the same declarations (``services/bootstrap.py``, from the system's map in
``shared/topology.py``), so both run the same code with the same settings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shared import topology
from shared.broker import Broker, ConsumeOptions
from shared.broker.port import BatchHandler, Queue
from shared.lifecycle import keep_startup_objects

log = logging.getLogger(__name__)

Loop = Callable[[threading.Event], None]


@dataclass(frozen=True)
class Consumer:
    """One queue a service reads, the handler its batches go to, and how large they get."""

    queue: str
    handler: BatchHandler
    options: ConsumeOptions = field(default_factory=ConsumeOptions)
    # Consumers side by side on the queue, each a thread with its own connection: while one waits (a
    # commit, a publisher confirm, a document write), another works. The handler must allow it.
    threads: int = 1


@dataclass(frozen=True)
class Service:
    name: str
    consumers: tuple[Consumer, ...] = ()
    loops: tuple[tuple[str, Loop], ...] = ()  # (thread name, loop until the event is set)
    tasks: tuple[str, ...] = ()  # task queues its part of the topology needs
    queues: tuple[Queue, ...] = ()  # queues of its own, declared only where it runs
    blueprint: Callable[[], object] | None = None  # builds its Flask blueprint (in each HTTP worker)
    ping: Callable[[], None] | None = None  # raises when what its /healthz stands for does not answer
    wake: Callable[[], None] = lambda: None  # in one process: new input is ready, do not wait to poll


def start(services: Sequence[Service], broker: Broker, stop: threading.Event) -> list[threading.Thread]:
    """Declare the topology the services need, then run each consumer and loop in a thread of its own.

    A thread that ends by an exception sets ``stop``: the process stops (and a supervisor restarts it)
    rather than running on without one of its parts.
    """
    topology.declare(broker, sorted({t for s in services for t in s.tasks}),
                     [q for s in services for q in s.queues])
    threads = []
    for service in services:
        for consumer in service.consumers:
            log.info("%s consuming %s (%d thread(s))", service.name, consumer.queue, consumer.threads)
            threads.extend(_thread(f"{consumer.queue}-{n}", stop, broker.consume, consumer.queue,
                                   consumer.handler, stop, consumer.options) for n in range(consumer.threads))
        for name, loop in service.loops:
            threads.append(_thread(name, stop, loop, stop))
    return threads


def run(services: Sequence[Service], broker: Broker, stop: threading.Event, join_timeout: float = 30) -> int:
    """``start`` them; once ``stop`` is set, wait for each thread to finish its batch. Exit status:
    0 on a requested stop, 1 when a part failed."""
    keep_startup_objects()
    threads = start(services, broker, stop)
    while not stop.wait(0.5):
        pass
    for thread in threads:
        thread.join(join_timeout)
    failed = [t.name for t in threads if getattr(t, "failed", False)]
    if failed:
        log.error("stopped because %s failed", ", ".join(failed))
        return 1
    log.info("stopped cleanly")
    return 0


def _thread(name: str, stop: threading.Event, target, *args) -> threading.Thread:
    def guarded():
        try:
            target(*args)
        except Exception:
            log.exception("%s failed; stopping", name)
            thread.failed = True
            stop.set()

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread
