"""The system's map: every exchange, queue and service of the pipeline, declared once.

Read top to bottom, this module is the system. GitHub's webhooks come in through ``ingest``, which
commits each one to the event log (and ``follow``, where webhooks cannot reach, polls GitHub for what
they would have said); the ``relay`` beside it publishes the log on ``wcml.events``;
the ``dispatcher`` routes each event to one message per matching task on ``wcml.tasks``; a
``predictor`` per task scores them onto ``wcml.results``; the ``store`` keeps every prediction (a
database row, blob documents) and ``latest`` writes each issue's newest document; ``actions``
labels and comments on GitHub by policy; the ``api`` serves what was stored and sends requests back
up (run this replay, score this issue now) on ``wcml.control``. Whatever a consumer refuses for good
goes to ``wcml.dead`` with its reason.

Everything that sets up, runs or deploys the pipeline is built from this declaration:

- the broker set-up: ``declare`` (below) declares ``EXCHANGES``, ``QUEUES`` and the
  queue of each routed task; a queue only a service's entry names is declared where it runs;
- the CLI: a ``wcml <name>`` subcommand for each entry of ``SERVICES`` (``services/cli.py``);
- the embedded mode: ``services.bootstrap.pipeline`` builds every entry marked ``embedded``;
- the distributed mode: ``services.distributed`` runs one entry a process (and what it starts
  beside it);
- the metrics: each distributed process serves /metrics and /healthz on its entry's ``metrics`` port
  (``shared.metrics_server``; an HTTP service on its ``http`` port);
- compose.yaml and deploy/ are held to it: ``tests/deployment_topology.py`` lists their differences
  (their services, and the metrics ports they offer).

It lives in ``shared/`` because the broker set-up, the health check and the dead-letter tool read
its queues, and ``shared/`` imports nothing from ``services/``. A service's builder is named by import
path, a string that only the process running that service imports: reading the map imports no
service (a predictor's model libraries are heavy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.broker.port import Broker, Exchange, Queue

# -- settings a service may need: the URLs of the adapters it is given -------------

BROKER, DATABASE, BLOBS = "WCML_BROKER_URL", "WCML_DATABASE_URL", "WCML_BLOB_URL"

# -- exchanges -----------------------------------------------------------------------

EVENTS_EXCHANGE = "wcml.events"  # logged events, keyed github|import|replay.<event>.<action>
TASKS_EXCHANGE = "wcml.tasks"  # one message per routed task, keyed by the task
RESULTS_EXCHANGE = "wcml.results"  # predictions, keyed by the task
CONTROL_EXCHANGE = "wcml.control"  # requests upstream, keyed replay | score
DEAD_EXCHANGE = "wcml.dead"  # what a consumer refused for good, its reason in x-wcml-* headers
# a record as the service that owns it keeps it, keyed replay-run | action: the API's read models
STATE_EXCHANGE = "wcml.state"

EXCHANGES = (
    Exchange(EVENTS_EXCHANGE, "topic"),
    Exchange(TASKS_EXCHANGE, "direct"),
    Exchange(RESULTS_EXCHANGE, "topic"),
    Exchange(DEAD_EXCHANGE, "fanout"),
    Exchange(CONTROL_EXCHANGE, "direct"),
    Exchange(STATE_EXCHANGE, "direct"),
)

# -- queues: each read by the service whose entry below names it -----------------------

EVENTS_QUEUE = Queue("events.dispatcher", ((EVENTS_EXCHANGE, "github.#"), (EVENTS_EXCHANGE, "import.#"),
                                           (EVENTS_EXCHANGE, "replay.#")))
TASK_QUEUE = Queue("tasks.{task}", ((TASKS_EXCHANGE, "{task}"),))  # one per routed task: task_queue()
RESULTS_QUEUE = Queue("results.store", ((RESULTS_EXCHANGE, "#"),))
# One consumer at a time: two replicas side by side (a rolling update) never act on one issue at once.
ACTIONS_QUEUE = Queue("results.actions", ((RESULTS_EXCHANGE, "#"),), single_consumer=True)
REPLAYS_QUEUE = Queue("replays.ingest", ((CONTROL_EXCHANGE, "replay"),))  # "run this replay"
SCORES_QUEUE = Queue("scores.ingest", ((CONTROL_EXCHANGE, "score"),))  # "score this issue now"
DEAD_QUEUE = Queue("dead", ((DEAD_EXCHANGE, ""),), dead_letter=False)  # read by `wcml dead list|requeue`
# The API's read models, from the replay source's run reports and the actions service's records.
RUNS_VIEW_QUEUE = Queue("runs.api", ((STATE_EXCHANGE, "replay-run"),))
ACTIONS_VIEW_QUEUE = Queue("actions.api", ((STATE_EXCHANGE, "action"),))
FOLLOWS_VIEW_QUEUE = Queue("follows.api", ((STATE_EXCHANGE, "follow"),))  # the GitHub followers' places

# Declared by every process at start (idempotent), so what is published waits for its consumer. The
# task queues are declared by the processes that publish or read them (they follow the routes file).
# Any other queue a service consumes (results.actions) is declared only where that service runs: a
# copy of a stream that no one reads would fill up.
QUEUES = (EVENTS_QUEUE, RESULTS_QUEUE, REPLAYS_QUEUE, SCORES_QUEUE, DEAD_QUEUE, RUNS_VIEW_QUEUE,
          ACTIONS_VIEW_QUEUE, FOLLOWS_VIEW_QUEUE)


def task_queue(task: str) -> Queue:
    """``tasks.<task>``, bound to ``wcml.tasks`` by the task's name."""
    return Queue(TASK_QUEUE.name.format(task=task),
                 tuple((exchange, key.format(task=task)) for exchange, key in TASK_QUEUE.bindings),
                 dead_letter=TASK_QUEUE.dead_letter, single_consumer=TASK_QUEUE.single_consumer)


# -- services ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceSpec:
    """One long-running service: what it is, what it reads and writes, and how it is run.

    A distributed process runs one entry (``wcml <name>``); its deployed unit is ``<name>`` in
    compose.yaml and ``wcml-<name>`` on Kubernetes, ``<name>-<task>`` / ``wcml-<name>-<task>`` for
    an entry run once per routed task. The embedded mode runs every entry marked ``embedded`` in one
    process.
    """

    name: str  # its `wcml` command
    help: str  # the command's help line
    builder: str  # "module:function", called as function(adapters, **options) -> shared.service.Service
    consumes: tuple[Queue, ...] = ()  # the built service must consume exactly these
    publishes: tuple[str, ...] = ()  # exchanges (any consumer also dead-letters to wcml.dead)
    needs: tuple[str, ...] = ()  # the adapters' URLs it is given (BROKER, DATABASE, BLOBS)
    requires: tuple[str, ...] = ()  # settings it refuses to start without, outside the embedded mode
    batches: str = ""  # "module:NAME": its ConsumeOptions (prefetch, batch size, wait), beside its handlers
    http: int | None = None  # its HTTP surface's default port (gunicorn workers; embedded: one shared app)
    # Outside the embedded mode, the port of its own /metrics and /healthz (shared.metrics_server), moved
    # by `--metrics-port` or WCML_<NAME>_METRICS_PORT; an HTTP service serves both on its `http` port.
    metrics: int | None = None
    beside: str | None = None  # a service its command starts in a process beside it (`--no-<that>`: not)
    per_task: bool = False  # one instance per routed task, each reading tasks.<task> (builder gets task=)
    replicas: str = ""  # whether instances may run side by side, and why
    embedded: bool = True  # runs in `wcml run`
    # what its builder is given in the embedded mode (the distributed process: its command's flags)
    embedded_options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    # in one process, the services it wakes when it has new input for them (else they poll); its
    # builder is given that as ``wake``
    wakes: tuple[str, ...] = ()


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "ingest", "webhook endpoint (gunicorn) plus its outbox relay",
        builder="services.builders:ingest", needs=(DATABASE,), requires=("WCML_WEBHOOK_SECRETS",),
        http=8000, beside="relay", wakes=("relay",),
        replicas="any number: each commits to the event log; the relays beside them elect one publisher"),
    ServiceSpec(
        "relay", "outbox relay: publish committed events, run requested replays",
        builder="services.builders:relay", metrics=9411, consumes=(REPLAYS_QUEUE, SCORES_QUEUE),
        publishes=(EVENTS_EXCHANGE, TASKS_EXCHANGE, STATE_EXCHANGE), needs=(BROKER, DATABASE),
        batches="services.ingest.service:REPLAY_REQUESTS",
        replicas="any number: one publishes at a time (a database session lock), another takes over"),
    ServiceSpec(
        "follow", "keep the event log in step with GitHub repositories by polling (WCML_GITHUB_FOLLOW, "
        "GITHUB_TOKEN): what their webhooks could not deliver",
        # the database: it appends to the event log (the relay publishes it); the broker: its place in
        # each repository, reported on wcml.state after each tick (the dashboard shows its lag)
        builder="services.builders:follow", metrics=9418, publishes=(STATE_EXCHANGE,),
        needs=(BROKER, DATABASE),
        wakes=("relay",),
        replicas="one: two would ask GitHub twice for each change (harmless, the event keys dedupe, but "
        "it spends the rate limit twice)"),
    ServiceSpec(
        "dispatcher", "route events to one task message per matching task",
        builder="services.builders:dispatcher", metrics=9412, consumes=(EVENTS_QUEUE,),
        publishes=(TASKS_EXCHANGE,),
        needs=(BROKER,), batches="services.dispatcher.service:OPTIONS",
        replicas="any number: routing is a pure function of the event and the routes file"),
    ServiceSpec(
        "predictor", "score one task's messages with its model bundle",
        builder="services.builders:predictor", metrics=9413, consumes=(TASK_QUEUE,),
        publishes=(RESULTS_EXCHANGE,),
        needs=(BROKER,), batches="services.predictor.service:OPTIONS", per_task=True,
        replicas="any number per task, scaled on its queue's length"),
    ServiceSpec(
        "store", "persist predictions to the database and the blob store, with its latest-documents "
        "follower in a process beside it",
        builder="services.builders:store", metrics=9414, consumes=(RESULTS_QUEUE,),
        needs=(BROKER, DATABASE, BLOBS),
        batches="services.store.service:OPTIONS", beside="latest",
        embedded_options=MappingProxyType({"follower": True}),  # in one process: a thread, woken directly
        replicas="any number: a prediction is unique on (delivery, task, model version)"),
    ServiceSpec(
        "latest", "write the latest document of each issue the store marked due",
        builder="services.builders:latest", metrics=9415, needs=(DATABASE, BLOBS), embedded=False,
        replicas="any number: each takes the due rows no other holds"),
    ServiceSpec(
        "actions", "label, comment, close by policy (dry run unless --live)",
        builder="services.builders:actions", metrics=9416, consumes=(ACTIONS_QUEUE,),
        publishes=(STATE_EXCHANGE,),
        needs=(BROKER, DATABASE), batches="services.actions.service:OPTIONS",
        replicas="any number: one consumes at a time (single active consumer), the others stand by"),
    ServiceSpec(
        "api", "query API and dashboard, with its read models' consumers in a process beside it",
        builder="services.builders:api", publishes=(CONTROL_EXCHANGE,), needs=(BROKER, DATABASE),
        requires=("WCML_API_KEYS",), http=8001, beside="api-views",
        replicas="any number: it reads, records the runs it is asked for, and sends requests"),
    ServiceSpec(
        "api-views", "keep the API's replay runs, actions and followers from the replay source's, the "
        "actions service's and the follower's reports",
        builder="services.builders:api_views", metrics=9417,
        consumes=(RUNS_VIEW_QUEUE, ACTIONS_VIEW_QUEUE, FOLLOWS_VIEW_QUEUE),
        needs=(BROKER, DATABASE), batches="services.api.service:VIEWS",
        replicas="any number: each report is upserted keeping the newest"),
)


@dataclass(frozen=True)
class Job:
    """A one-shot command a deployment runs before its services start."""

    command: tuple[str, ...]
    help: str


JOBS = (
    Job(("migrate",), "the database schema brought up to date (each service also migrates at start)"),
    Job(("models", "demo"), "first model bundles where none is installed (compose.yaml's shared volume)"),
)


def service(name: str) -> ServiceSpec:
    """The entry named ``name``; KeyError when none is."""
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(name)


def instances(spec: ServiceSpec, tasks: list[str] | tuple[str, ...]) -> list[tuple[str, str | None]]:
    """(instance name, task) of each instance ``spec`` runs as: one, or one per routed task."""
    return [(f"{spec.name}-{task}", task) for task in tasks] if spec.per_task else [(spec.name, None)]


def consumed(spec: ServiceSpec, task: str | None = None) -> tuple[Queue, ...]:
    """The queues an instance of ``spec`` reads (``tasks.<task>`` for the task queue)."""
    return tuple(task_queue(task) if q == TASK_QUEUE else q for q in spec.consumes)


def own_queues(spec: ServiceSpec) -> tuple[Queue, ...]:
    """The queues only this service's process declares: those it reads that are neither in ``QUEUES``
    nor a task queue."""
    return tuple(q for q in spec.consumes if q not in QUEUES and q != TASK_QUEUE)


# -- the broker set-up --------------------------------------------------------------------

def declare(broker: Broker, tasks: Iterable[str] = (), extra: Iterable[Queue] = ()) -> None:
    """Declare every exchange, the queues every process declares, the queue of each of ``tasks``
    and ``extra`` (the queues only the services of this process read). Idempotent: every process
    calls it at start."""
    broker.declare(EXCHANGES, [*QUEUES, *map(task_queue, tasks), *extra])


def replay_path(tasks: Iterable[str]) -> list[Queue]:
    """The queues a replay of ``tasks`` fills: their task queues, then the results' (the store's)."""
    return [*map(task_queue, tasks), RESULTS_QUEUE]
