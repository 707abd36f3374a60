"""Run a handler over a batch until every delivery is settled.

Shared by both broker adapters so they treat failures alike:
- the handler's own rejections are dead-lettered with their reason;
- a transient failure (database or S3 down) is retried in place with backoff;
- any other exception is narrowed down by splitting the batch, and then a batch
  body's items (``shared.messages.split_batch``), so only the message or item
  that causes it is dead-lettered, alone, never its innocent neighbours.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from shared.broker.dead_letters import dead_letter
from shared.broker.port import BatchHandler, Delivery, Outgoing, Rejection
from shared.errors import is_transient
from shared.messages import split_batch

log = logging.getLogger(__name__)


class Stopped(Exception):
    """The consumer was asked to stop while a batch still failed: requeue it."""


def run_batch(deliveries: list[Delivery], handler: BatchHandler, queue: str,
              publish: Callable[[Sequence[Outgoing]], None], sleep: Callable[[float], None],
              stop: threading.Event) -> None:
    """Return when each delivery is handled or dead-lettered; raise Stopped otherwise."""
    rejections = _settle(deliveries, handler, sleep, stop)
    if rejections:
        for r in rejections:
            log.warning("dead-lettering a message from %s: %s", queue, r.reason)
        publish([dead_letter(r, queue) for r in rejections])


def _settle(deliveries: list[Delivery], handler: BatchHandler, sleep, stop) -> list[Rejection]:
    delay = 0.1
    while True:
        try:
            return list(handler(deliveries))
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            if is_transient(exc):
                if stop.is_set():
                    raise Stopped from exc
                log.warning("transient failure, retrying in %.1fs: %s", delay, _one_line(exc))
                sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if len(deliveries) == 1:
                halves = split_batch(deliveries[0].body)
                if halves is not None:  # one body of many items: narrow down to the item
                    return [r for half in halves
                            for r in _settle([deliveries[0].carrying(half)], handler, sleep, stop)]
                log.exception("handler failed on one message")
                return [Rejection(deliveries[0], f"handler error: {_one_line(exc)}")]
            middle = len(deliveries) // 2
            return (_settle(deliveries[:middle], handler, sleep, stop)
                    + _settle(deliveries[middle:], handler, sleep, stop))


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()
    return text[0][:300] if text else type(exc).__name__
