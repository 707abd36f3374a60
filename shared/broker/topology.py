"""The pipeline's exchanges and queues, named once (docs/architecture.md, "Messages")."""

from __future__ import annotations

from collections.abc import Iterable

from shared.broker.port import Broker, Exchange, Queue
from shared.messages import (
    CONTROL_EXCHANGE,
    DEAD_EXCHANGE,
    EVENTS_EXCHANGE,
    RESULTS_EXCHANGE,
    STATE_EXCHANGE,
    STATE_KEYS,
    TASKS_EXCHANGE,
    ActionRecord,
    ReplayRun,
)

EXCHANGES = (
    Exchange(EVENTS_EXCHANGE, "topic"),
    Exchange(TASKS_EXCHANGE, "direct"),
    Exchange(RESULTS_EXCHANGE, "topic"),
    Exchange(DEAD_EXCHANGE, "fanout"),
    Exchange(CONTROL_EXCHANGE, "direct"),
    Exchange(STATE_EXCHANGE, "direct"),
)

EVENTS_QUEUE = Queue("events.dispatcher", ((EVENTS_EXCHANGE, "github.#"), (EVENTS_EXCHANGE, "import.#"),
                                           (EVENTS_EXCHANGE, "replay.#")))
RESULTS_QUEUE = Queue("results.store", ((RESULTS_EXCHANGE, "#"),))
REPLAYS_QUEUE = Queue("replays.ingest", ((CONTROL_EXCHANGE, "replay"),))
SCORES_QUEUE = Queue("scores.ingest", ((CONTROL_EXCHANGE, "score"),))  # "score this issue now"
# Declared by the actions service alone (a queue nobody reads would fill up), with one consumer at a
# time: two replicas side by side (a rolling update) never work on the same issue at once.
ACTIONS_QUEUE = Queue("results.actions", ((RESULTS_EXCHANGE, "#"),), single_consumer=True)
DEAD_QUEUE = Queue("dead", ((DEAD_EXCHANGE, ""),), dead_letter=False)
# The query API's read models: replay runs (from the replay source) and actions (from the actions
# service). Declared by everyone, so a report is never unroutable and waits for an API started later.
RUNS_VIEW_QUEUE = Queue("runs.api", ((STATE_EXCHANGE, STATE_KEYS[ReplayRun]),))
ACTIONS_VIEW_QUEUE = Queue("actions.api", ((STATE_EXCHANGE, STATE_KEYS[ActionRecord]),))


def task_queue(task: str) -> Queue:
    return Queue(f"tasks.{task}", ((TASKS_EXCHANGE, task),))


def replay_path(tasks: Iterable[str]) -> list[Queue]:
    """The queues a replay of ``tasks`` fills: their task queues, then the results' (the store's)."""
    return [*map(task_queue, tasks), RESULTS_QUEUE]


def declare(broker: Broker, tasks: Iterable[str] = (), extra: Iterable[Queue] = ()) -> None:
    """Declare everything a service touches; every service calls it at start (idempotent)."""
    queues = [EVENTS_QUEUE, RESULTS_QUEUE, REPLAYS_QUEUE, SCORES_QUEUE, DEAD_QUEUE, RUNS_VIEW_QUEUE,
              ACTIONS_VIEW_QUEUE, *map(task_queue, tasks), *extra]
    broker.declare(EXCHANGES, queues)
