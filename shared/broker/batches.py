"""Run a handler over a batch until every delivery is settled.

Shared by both broker adapters so they treat failures alike:
- the handler's own rejections are dead-lettered with their reason;
- a transient failure (database or S3 down) is retried in place with backoff;
- any other exception is narrowed down by splitting the batch, and then a batch
  body's items (``shared.messages.split_batch``), so only the message or item
  that causes it is dead-lettered, alone, never its innocent neighbours.

Every consumer of every service passes here, so each process's own counters of what it consumed,
dead-lettered and retried are kept here, by queue (``wcml_consumer_*``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from shared import metrics
from shared.broker.dead_letters import dead_letter
from shared.broker.port import BatchHandler, Delivery, Outgoing, Rejection
from shared.errors import is_transient
from shared.messages import split_batch

log = logging.getLogger(__name__)

CONSUMED = metrics.counter("wcml_consumer_messages_total",
                           "Messages a consumer settled (handled, or dead-lettered), by queue", ("queue",))
DEAD_LETTERED = metrics.counter("wcml_consumer_dead_letters_total",
                                "Dead letters a consumer sent to wcml.dead (a message or one item of a "
                                "batch message), by the queue they came from", ("queue",))
RETRIED = metrics.counter("wcml_consumer_retries_total",
                          "Batches retried in place after a transient failure (database, S3), by queue",
                          ("queue",))
BATCH_SECONDS = metrics.histogram("wcml_consumer_batch_duration_seconds",
                                  "Seconds to settle one consumed batch, its retries included, by queue",
                                  ("queue",), buckets=metrics.DURATION_BUCKETS)


class Stopped(Exception):
    """The consumer was asked to stop while a batch still failed: requeue it."""


def run_batch(deliveries: list[Delivery], handler: BatchHandler, queue: str,
              publish: Callable[[Sequence[Outgoing]], None], sleep: Callable[[float], None],
              stop: threading.Event) -> None:
    """Return when each delivery is handled or dead-lettered; raise Stopped otherwise."""
    started = time.monotonic()
    rejections = _settle(deliveries, handler, sleep, stop, lambda: RETRIED.labels(queue).inc())
    if rejections:
        for r in rejections:
            log.warning("dead-lettering a message from %s: %s", queue, r.reason)
        publish([dead_letter(r, queue) for r in rejections])
        DEAD_LETTERED.labels(queue).inc(len(rejections))
    CONSUMED.labels(queue).inc(len(deliveries))
    BATCH_SECONDS.labels(queue).observe(time.monotonic() - started)


def _settle(deliveries: list[Delivery], handler: BatchHandler, sleep, stop,
            retrying: Callable[[], None] = lambda: None) -> list[Rejection]:
    delay = 0.1
    while True:
        try:
            return list(handler(deliveries))
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            if is_transient(exc):
                if stop.is_set():
                    raise Stopped from exc
                log.warning("transient failure, retrying in %.1fs: %s", delay, _one_line(exc))
                retrying()
                sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if len(deliveries) == 1:
                halves = split_batch(deliveries[0].body)
                if halves is not None:  # one body of many items: narrow down to the item
                    return [r for half in halves
                            for r in _settle([deliveries[0].carrying(half)], handler, sleep, stop, retrying)]
                log.exception("handler failed on one message")
                return [Rejection(deliveries[0], f"handler error: {_one_line(exc)}")]
            middle = len(deliveries) // 2
            return (_settle(deliveries[:middle], handler, sleep, stop, retrying)
                    + _settle(deliveries[middle:], handler, sleep, stop, retrying))


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()
    return text[0][:300] if text else type(exc).__name__
