"""Composition root: the adapters settings name, and every service built from its declaration.

The distributed commands run one of these a process; the embedded mode (``embedded.py``) runs them
all in one. Nothing imports this module but those two.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

from services.dispatcher import service as dispatcher_service
from services.ingest import service as ingest_service
from services.predictor import service as predictor_service
from services.store import service as store_service
from shared import service as runner
from shared.blobs import BlobStore, open_blob_store
from shared.broker import Broker, connect, topology
from shared.database import create_engine, migrate
from shared.lifecycle import stop_on_signals
from shared.service import Service
from shared.settings import Settings, SettingsError


class Adapters:
    """What the ports are connected to in this process, each opened on first use."""

    def __init__(self, settings: Settings, *, broker: Broker | None = None):
        self.settings = settings
        if broker is not None:
            self.broker = broker

    @cached_property
    def engine(self):
        if not self.settings.database_url:  # a command that needs it only on some paths asks for it here
            raise SettingsError("WCML_DATABASE_URL", "is not set")
        return create_engine(self.settings.database_url)

    @cached_property
    def migrated_engine(self):
        """The engine, once the schema is up to date: every service that writes tables migrates at start
        (commands that only read do not)."""
        engine = self.engine  # a missing URL is said in one line first
        migrate(self.settings.database_url)
        return engine

    @cached_property
    def broker(self) -> Broker:
        broker = connect(self.settings.broker_url)
        topology.declare(broker)
        return broker

    @cached_property
    def blobs(self) -> BlobStore:
        return open_blob_store(self.settings.blob_url)

    def close(self) -> None:
        if "broker" in self.__dict__:
            self.broker.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


def relay(a: Adapters) -> Service:
    # No migration: ingest migrated before starting it, and a relay that starts while the database is
    # down must wait for it (its loop backs off), not exit.
    return ingest_service.relay(a.engine, a.broker)


def webhooks(a: Adapters, on_append=lambda: None) -> Service:
    s = a.settings
    return ingest_service.webhooks(a.migrated_engine, s.webhook_secrets, s.max_body_bytes, on_append)


def dispatcher(a: Adapters) -> Service:
    return dispatcher_service.declare(a.broker, a.settings.routes_file)


def predictor(a: Adapters, task: str, model: str | None = None, **overrides) -> Service:
    """``overrides`` (prefetch, max_batch, max_wait; None: as declared) change the declared batch settings."""
    options = replace(predictor_service.OPTIONS, **{k: v for k, v in overrides.items() if v is not None})
    bundle = predictor_service.bundle(a.settings.models_dir, task, model)
    return predictor_service.declare(a.broker, a.settings.models_dir, bundle, options)


def store(a: Adapters) -> Service:
    return store_service.writer(a.migrated_engine, a.blobs)


def api(a: Adapters) -> Service:
    return store_service.api(a.migrated_engine, a.settings.api_keys, a.broker)


def routed_tasks(a: Adapters) -> list[str]:
    return dispatcher_service.routed_tasks(a.settings.routes_file)


def pipeline(a: Adapters) -> list[Service]:
    """Every service, as the embedded mode runs them together."""
    outbox = relay(a)
    return [webhooks(a, on_append=outbox.wake), outbox, dispatcher(a),
            *(predictor(a, task) for task in routed_tasks(a)), store(a), api(a)]


def consume(a: Adapters, *services: Service) -> int:
    """A distributed consumer process: run until SIGTERM, finish the current batch, exit."""
    try:
        return runner.run(services, a.broker, stop_on_signals())
    finally:
        a.close()


# -- entry points the commands call ------------------------------------------------

def serve_http(a: Adapters, build, *, bind: str, workers: int, threads: int = 1, relay: bool = False) -> int:
    """``wcml ingest`` / ``wcml api``: the service's blueprint under gunicorn; ingest's relay beside it.
    The caller has set up multi-process metrics (``shared.wsgi.multiprocess_metrics``) first."""
    import subprocess
    import sys

    from shared import wsgi
    from shared.http import app_for

    a.migrated_engine  # noqa: B018 - once, before the workers start

    def app():  # in each worker, after the fork: adapters of its own
        service = build(Adapters(a.settings))
        return app_for(f"wcml-{service.name}", [service.blueprint()], service.ping)

    beside = subprocess.Popen([sys.executable, "-m", "services.cli", "relay"]) if relay else None
    try:
        wsgi.serve(app, bind, workers, f"wcml-{build.__name__}", threads=threads)
    finally:
        if beside is not None:
            beside.terminate()
            try:
                beside.wait(30)
            except subprocess.TimeoutExpired:  # it resumes where it was
                beside.kill()
    return 0


def replay(a: Adapters, *, quiet: bool, resume: str | None, **request) -> int:
    """``wcml replay``: the replay source, run here; it publishes into the broker the settings name
    (the embedded instance's queue file, when run in its folder)."""
    from services.ingest.commands import replay as run_replay

    _shared_broker(a, "a replay")
    try:
        engine, stop = a.migrated_engine, stop_on_signals()
        return run_replay(engine, a.broker, stop, resume=resume, quiet=quiet, **request)
    finally:
        a.close()


def _shared_broker(a: Adapters, what: str) -> None:
    from shared.errors import UserError

    if a.settings.broker_url.startswith("memory://"):
        raise UserError(f"memory:// queues live inside one process: {what} needs the instance's own broker "
                        "(an amqp:// or sqlite:// WCML_BROKER_URL), or its API (POST /api/v1/replays)")


def github_import(a: Adapters, repo: str, **options) -> int:
    """``wcml github import``: a repository's issue history into the event log (token: GITHUB_TOKEN)."""
    from services.ingest.github.commands import import_history
    from shared.settings import github_api_url, github_token

    return import_history(a.migrated_engine, repo, token=github_token(), base_url=github_api_url(), **options)


def github_redeliver(a: Adapters, repo: str, hook_id: int, *, watch: float | None) -> int:
    """``wcml github redeliver``: once, or every ``watch`` seconds beside ingest until SIGTERM."""
    from services.ingest.github.commands import redeliver
    from shared.settings import github_api_url, github_token

    return redeliver(a.engine, repo, hook_id, token=github_token(), base_url=github_api_url(),
                     watch=bool(watch), every=watch or 0, stop=stop_on_signals())


def dataset_build(a: Adapters | None, task: str, out, *, repo: str | None, export, quiet: bool) -> int:
    """``wcml dataset build``: from a GitHub export, or from the ``issues`` events in the event log."""
    from services.predictor.training.commands import dataset_build as build

    if export:
        return build(task, out, export=export, quiet=quiet)
    from services.ingest.event_log import EventLog, LogFilter

    event_log, selection = EventLog(a.engine), LogFilter(repo=repo, event="issues")
    return build(task, out, envelopes=event_log.iterate(selection), total=event_log.count(selection),
                 quiet=quiet)


def compare(a: Adapters, run_id: str, *, truth_file, **models) -> int:
    """``wcml compare``, with the labels of a data set as the truth when one is given."""
    from services.predictor.training.datasets import read_labelled
    from services.store.commands import compare as print_comparison

    truth = None
    if truth_file:
        issues, labels = read_labelled(truth_file)
        truth = {(issue.repo, issue.number): label for issue, label in zip(issues, labels, strict=True)}
    return print_comparison(a.engine, run_id, truth=truth, **models)


def dead_letters(a: Adapters, action: str, limit: int) -> int:
    """``wcml dead list|requeue`` on the broker's ``dead`` queue."""
    import json
    import sys

    from shared.broker import dead_letters as dead

    _shared_broker(a, "dead letters")
    if action == "requeue":
        print(f"requeued {dead.requeue(a.broker, limit)} message(s) to their original exchange")
        return 0
    described = dead.listing(a.broker, limit)
    for item in described:
        print(json.dumps(item))
    print(f"{len(described)} dead-lettered message(s) shown", file=sys.stderr)
    return 0
