"""Waiting, for tests and benchmarks: one polling helper, and quiescence of the whole pipeline.

Nothing here sleeps for a guessed time to let something happen; it polls for the state that says
it has. A sleep that *is* the fault under test (RabbitMQ down for 20 s) stays where the fault is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from shared.topology import ACTIONS_VIEW_QUEUE, RUNS_VIEW_QUEUE

T = TypeVar("T")
_SHOWN = 2000  # characters of the last value kept in a failure message


def eventually(check: Callable[[], T], *, timeout: float, interval: float = 0.1,
               message: str | Callable[[], str] | None = None) -> T:
    """Call ``check()`` until it returns a truthy value, and return that value.

    An exception from ``check()`` means "not yet" (a service still starting, an ``assert`` inside
    the check that says what is missing); it is kept as the last thing seen. ``check`` runs at
    least once, and once more at the deadline. After ``timeout`` seconds this fails with an
    AssertionError saying what was awaited (``message``, a string or a function giving one, e.g.
    with the services' logs; else the check's docstring or name) and the last value returned, or
    the last exception raised (chained as the cause).
    """
    started = time.monotonic()
    value, error = None, None
    while True:
        try:
            value, error = check(), None
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"; reported at the end
            error = exc
        else:
            if value:
                return value
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            break
        time.sleep(min(interval, left))
    what = message() if callable(message) else message
    what = what or (check.__doc__ or "").strip() or getattr(check, "__name__", repr(check))
    if error is not None:
        seen = f"last exception: {type(error).__name__}: {error}"
    else:
        seen = f"last value: {value!r}"
    raise AssertionError(f"waited {timeout:g} s for {what}; {seen[:_SHOWN]}") from error


# -- the pipeline at rest ---------------------------------------------------------

DEAD_LETTERS = "dead"  # rejected messages wait there for an operator: never drained by the pipeline
# Reports for the query API's read models (replay runs, actions): off the predictions' path, and drained
# only where an API runs.
REPORTS = (RUNS_VIEW_QUEUE.name, ACTIONS_VIEW_QUEUE.name)


def pipeline_state(amqp_url: str, database, ignore: Iterable[str] = (DEAD_LETTERS,),
                   node: str | None = None) -> dict:
    """What is still in flight, now: event-log rows the relay has not published, ready messages per
    queue of ``amqp_url``'s vhost (but ``ignore``), and messages delivered to a consumer and not yet
    acknowledged. Read upstream first (log, then queues, then consumers). ``amqp_url`` may list a
    cluster's nodes; ``node`` names the one rabbitmqctl asks (tests/rabbit_cluster.py)."""
    import pika
    import sqlalchemy as sa

    from shared.broker.urls import split_broker_urls
    from tests.harness import VhostManager, vhost_of

    engine = sa.create_engine(database, poolclass=sa.NullPool) if isinstance(database, str) else database
    try:
        with engine.connect() as conn:
            unpublished = conn.execute(sa.text(
                "SELECT count(*) FROM event_log WHERE published_at IS NULL")).scalar_one()
    finally:
        if engine is not database:
            engine.dispose()
    manager, vhost = VhostManager(amqp_url, node=node), vhost_of(split_broker_urls(amqp_url)[0])
    names = [q for q in manager.queue_names(vhost) if q not in set(ignore)]
    ready = {}
    # The passive declare answers from the queue itself: exact now (the management API's and
    # rabbitmqctl's counts of a quorum queue are sampled every few seconds, and lag).
    connection = pika.BlockingConnection([pika.URLParameters(u) for u in split_broker_urls(amqp_url)])
    try:
        channel = connection.channel()
        for name in sorted(names, key=_pipeline_order):
            ready[name] = channel.queue_declare(name, passive=True).method.message_count
    finally:
        connection.close()
    return {"unpublished_events": unpublished, "ready": ready,
            "unacknowledged": manager.unacknowledged(vhost)}


def _pipeline_order(queue: str) -> tuple[int, str]:
    stages = ("events.", "tasks.", "results.")
    return next((i for i, s in enumerate(stages) if queue.startswith(s)), len(stages)), queue


def busy(state: dict) -> bool:
    return bool(state["unpublished_events"] or any(state["ready"].values()) or state["unacknowledged"])


def settled(amqp_url: str, database, *, timeout: float = 120, interval: float = 0.5,
            ignore: Iterable[str] = (DEAD_LETTERS, *REPORTS), node: str | None = None,
            message: str | Callable[[], str] = "the pipeline to settle") -> dict:
    """Wait until nothing is in flight in the pipeline, so nothing (no late duplicate) can still land.

    ``database`` is the event log's URL or engine. Settled means: every row of the event log is
    published, and every queue of the vhost but ``ignore`` has no ready and no unacknowledged
    message. Every stage acks only after its effect is durable (a confirmed publish downstream, a
    commit), and the relay marks a row published only after the broker confirmed it, so a piece of
    work is always in the log, on a queue or at a consumer until it is done. The state must hold in
    two rounds in a row: a message requeued by a consumer that just died is, for an instant, in
    neither its channel nor its queue. Returns the last state seen. ``message`` (a string or a
    function giving one) says what was awaited if it times out.
    """
    ignore = tuple(ignore)
    calm = [0]  # rounds in a row seen at rest; a round that fails (broker restarting) breaks the run
    seen: list[dict] = []

    def quiet() -> dict | None:
        run, calm[0] = calm[0], 0
        state = pipeline_state(amqp_url, database, ignore, node)
        seen[:] = [state]
        calm[0] = 0 if busy(state) else run + 1
        return state if calm[0] >= 2 else None

    return eventually(quiet, timeout=timeout, interval=interval,
                      message=lambda: f"{message() if callable(message) else message}, last state "
                                      f"{seen[-1] if seen else 'never read'}")
