"""Replay: republish a slice of the event log, page by page, as a recorded, resumable run.

Replayed events carry the run id (and any forced model version). With the routing rules at hand
(``shared.event_routes``, as the dispatcher applies them) the replay source routes each event itself and
publishes its task messages straight to ``wcml.tasks``, up to 50 in a message (``task_messages``):
one broker hop and one process fewer per event, and one broker message for 50 tasks, which is most
of what a replay of history costs. An event the rules cannot route (no issue
in its payload) goes the long way, as an envelope on ``replay.<event>.<action>``, so the dispatcher
dead-letters it with its reason as it would a live one. Without rules, every event goes that way.
Anything meant for live events only binds ``github.#`` and never sees a replay.

Runs are started from the command line (``wcml replay``) or asked for by a ``ReplayRequest``
message (the query API's ``POST /api/v1/replays``), which ``ReplaySource`` records and runs. Every
change of a run is reported on ``wcml.state`` (``run_reports.py``): that is how the API learns of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from services.ingest.event_log import EventLog
from services.ingest.replay_runs import ReplayRuns
from services.ingest.run_reports import SWEEP_EVERY, RunReports, outgoing
from shared.broker import Broker, Delivery, Outgoing, Rejection
from shared.event_routes import TASKS_PER_MESSAGE, NotAnIssueEvent, Rule, route, task_messages, tasks_of
from shared.known import UnknownName, check
from shared.messages import (
    EVENTS_EXCHANGE,
    EventEnvelope,
    MessageError,
    ReplayRequest,
    ReplayRun,
    decode,
    encode,
    replace,
)
from shared.replays import LogFilter, ReplayRequestError, requested
from shared.topology import replay_path

log = logging.getLogger(__name__)


class Throttle:
    """At most ``rate`` events per second on average (None: as fast as the broker confirms)."""

    def __init__(self, rate: float | None):
        self.rate = rate
        self.start = time.monotonic()
        self.sent = 0

    def wait(self, count: int, stop: threading.Event) -> None:
        if self.rate:
            due = self.start + self.sent / self.rate
            stop.wait(max(0.0, due - time.monotonic()))
        self.sent += count

    def page_size(self, default: int) -> int:
        return default if not self.rate else max(1, min(default, int(self.rate / 5) or 1))


class Backlog:
    """Holds a replay back while the queues on its path (its tasks', the store's) hold more than ``high``
    messages in all, until they hold fewer than ``low``: the broker holds what the consumers can take in
    seconds. Unbounded, a replay of history fills those quorum queues far faster than they drain, and
    every consumer slows as they grow (docs/benchmarks.md)."""

    def __init__(self, broker: Broker, queues: list[str], high: int = 20_000, low: int = 10_000,
                 poll: float = 0.25):
        self.broker, self.queues, self.high, self.low, self.poll = broker, queues, high, low, poll
        self.waited = 0.0  # seconds held back, for the run's log line

    def depth(self) -> int:
        try:
            return self.broker.depth_of(self.queues)
        except Exception as exc:  # advisory: a depth it cannot read holds nothing back
            log.debug("no depth for %s (%s)", self.queues, type(exc).__name__)
            return 0

    def wait(self, stop: threading.Event) -> None:
        if not self.high or not self.queues or self.depth() <= self.high:
            return
        started = time.monotonic()
        while not stop.wait(self.poll) and self.depth() > self.low:
            pass
        self.waited += time.monotonic() - started


class Replayer:
    def __init__(self, event_log: EventLog, broker: Broker, runs: ReplayRuns, page: int = 500,
                 rules: tuple[Rule, ...] | None = None, max_backlog: int = 20_000):
        self.log = event_log
        self.broker = broker
        self.runs = runs
        self.reports = RunReports(broker, runs)
        self.page = page
        self.rules = rules
        self.max_backlog = max_backlog

    def backlog(self, tasks: list[str]) -> Backlog:
        """The bound on the queues a replay of ``tasks`` (all routed ones when empty) fills
        (``topology.replay_path``): about ``max_backlog`` tasks, counted in messages (batches of up to
        TASKS_PER_MESSAGE)."""
        routed = sorted({r.task for r in self.rules or ()} & set(tasks or {r.task for r in self.rules or ()}))
        queues = [q.name for q in replay_path(routed)]
        high = max(2, self.max_backlog // TASKS_PER_MESSAGE)
        return Backlog(self.broker, queues, high=high, low=high // 2)

    def start(self, request: ReplayRequest) -> ReplayRun:
        """Record a run to be run here and now (``wcml replay``), reported as ``running``."""
        return self.record(request, "running")

    def record(self, request: ReplayRequest, state: str = "requested") -> ReplayRun:
        """Record a run with the number of events its filters select, and report it (a request seen
        before reports the run as it stands). With the rules at hand, one naming a task they do not
        route to is refused (``UnknownName``); so is one whose filters do not check
        (``ReplayRequestError``): nothing is recorded."""
        selection = LogFilter.of(request.filters)
        if self.rules is not None:
            for task in request.tasks:
                check("task", task, tasks_of(self.rules))
        request = replace(request, filters=selection.to_json())
        run = self.runs.record(request, self.log.count(selection), state)
        self.reports.report(run)
        return run

    def refuse(self, request: ReplayRequest, reason: str) -> None:
        """Report a request that will not run as ``failed`` with ``reason`` (it is not recorded here:
        nothing can resume it). Raises ``PublishError`` when the broker does not take the report."""
        filters = request.filters
        try:
            filters = LogFilter.of(filters).to_json()
        except ReplayRequestError:
            filters = {}
        refused = requested(replace(request, filters=filters), revision=1, state="failed", error=reason)
        self.broker.publish([outgoing(refused)])

    def run(self, run_id: str, stop: threading.Event, *, rate: float | None = None,
            on_progress: Callable[[int], None] = lambda n: None) -> ReplayRun:
        """Publish the run's remaining events; return the run as left (done, or paused on stop)."""
        run = self.runs.claim(run_id)
        if run is None:
            return self.runs.get(run_id)
        self.reports.report(run)
        selection = LogFilter.of(run.filters)
        only_tasks = run.tasks or None
        after = run.last_position
        throttle = Throttle(rate)
        backlog = self.backlog(list(run.tasks))
        try:
            while not stop.is_set():
                page = self.log.read(selection, after=after, limit=throttle.page_size(self.page))
                if not page:
                    run = self._finish(run_id, "done")
                    if backlog.waited:
                        log.info("replay %s held back %.0f s for the consumers", run_id, backlog.waited)
                    return run
                throttle.wait(len(page), stop)
                backlog.wait(stop)
                if stop.is_set():
                    break
                replayed = [replace(e, replay_id=run_id, model_version=run.model_version,
                                    only_tasks=only_tasks) for e in page]
                self.broker.publish(self._messages(replayed, run_id))
                after = page[-1].position
                self.reports.report(self.runs.advance(run_id, len(page), after))
                on_progress(len(page))
        except Exception as exc:
            self._finish(run_id, "failed", f"{type(exc).__name__}: {str(exc)[:300]}")
            raise
        return self._finish(run_id, "paused")

    def _finish(self, run_id: str, state: str, error: str | None = None) -> ReplayRun:
        run = self.runs.finish(run_id, state, error)
        self.reports.report(run)
        return run

    def _messages(self, replayed: list[EventEnvelope], run_id: str) -> list[Outgoing]:
        """Task messages for what the rules route (batches, ``task_messages``); an envelope for the
        dispatcher otherwise."""
        out, tasks = [], []
        for e in replayed:
            if self.rules is not None:
                try:
                    tasks.extend(route(self.rules, e))
                    continue
                except NotAnIssueEvent:
                    pass  # the dispatcher says why, in a dead letter
            out.append(Outgoing(EVENTS_EXCHANGE, e.routing_key, encode(e),
                                message_id=f"{e.delivery_id}:{run_id}"))
        return out + task_messages(tasks)

    def run_requested(self, stop: threading.Event) -> int:
        """Execute the runs recorded as ``requested``; return how many finished."""
        finished = 0
        for run_id in self.runs.requested():
            if stop.is_set():
                break
            log.info("starting requested replay %s", run_id)
            finished += self.run(run_id, stop).state == "done"
        return finished


class ReplaySource:
    """Consumes ``ReplayRequest`` messages: records each run, then runs it beside the relay.

    The consumer only records and reports (and acks): a run may take longer than a broker lets a
    message stay unacknowledged. A request that cannot run is dead-lettered with its reason once its
    run is reported ``failed`` with that reason. ``serve`` runs what is recorded as requested, at
    start (runs asked for before a stop) and whenever a request arrives, and sends the reports the
    broker has not confirmed yet (``RunReports.sweep``) at start and every ``SWEEP_EVERY`` seconds.
    """

    def __init__(self, replayer: Replayer, sweep_every: float = SWEEP_EVERY):
        self.replayer = replayer
        self.sweep_every = sweep_every
        self.arrived = threading.Event()

    def handle(self, deliveries: list[Delivery]) -> list[Rejection]:
        rejections = []
        for d in deliveries:
            try:
                request = decode(d.body, ReplayRequest)
            except MessageError as exc:
                rejections.append(Rejection(d, str(exc)))
                continue
            try:
                self.replayer.record(request)
            except (ReplayRequestError, UnknownName) as exc:
                self.replayer.refuse(request, str(exc))
                rejections.append(Rejection(d, str(exc)))
        self.arrived.set()
        return rejections

    def serve(self, stop: threading.Event) -> None:
        self.arrived.set()
        swept = 0.0
        while not stop.is_set():
            if time.monotonic() - swept >= self.sweep_every:
                swept = time.monotonic()
                self._sweep()
            if not self.arrived.wait(min(0.5, self.sweep_every)):
                continue
            self.arrived.clear()
            try:
                self.replayer.run_requested(stop)
            except Exception:  # noqa: BLE001 - recorded on the run as failed; keep serving
                log.exception("a requested replay failed")

    def _sweep(self) -> None:
        try:
            if sent := self.replayer.reports.sweep():
                log.info("reported %d replay run revision(s) the broker had not confirmed", sent)
        except Exception as exc:  # noqa: BLE001 - the next sweep tries again
            log.warning("replay run reports not sent (%s); trying again in %.0f s", type(exc).__name__,
                        self.sweep_every)
