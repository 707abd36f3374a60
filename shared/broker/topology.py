"""The broker set-up, built from the system's declaration (``shared/topology.py``): what every
process declares at start. The queue names are those of the declaration, here for its callers."""

from __future__ import annotations

from collections.abc import Iterable

from shared.broker.port import Broker, Queue
from shared.topology import (  # noqa: F401 - the declaration's names, as the broker's callers use them
    ACTIONS_QUEUE,
    ACTIONS_VIEW_QUEUE,
    DEAD_QUEUE,
    EVENTS_QUEUE,
    EXCHANGES,
    QUEUES,
    REPLAYS_QUEUE,
    RESULTS_QUEUE,
    RUNS_VIEW_QUEUE,
    SCORES_QUEUE,
    task_queue,
)


def replay_path(tasks: Iterable[str]) -> list[Queue]:
    """The queues a replay of ``tasks`` fills: their task queues, then the results' (the store's)."""
    return [*map(task_queue, tasks), RESULTS_QUEUE]


def declare(broker: Broker, tasks: Iterable[str] = (), extra: Iterable[Queue] = ()) -> None:
    """Declare every exchange, the queues every process declares, the queue of each of ``tasks``
    and ``extra`` (the queues only the services of this process read). Idempotent: every process
    calls it at start."""
    broker.declare(EXCHANGES, [*QUEUES, *map(task_queue, tasks), *extra])
