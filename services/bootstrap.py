"""Composition root: the adapters settings name, and every service built from its declaration.

The distributed commands run one of these a process; the embedded mode (``embedded.py``) runs them
all in one. Nothing imports this module but those two. Each builder imports its service when it is
called, so a process holds only the service it runs (the predictor's model libraries, torch among
them through skops, cost about 300 MiB and seconds at start that a dispatcher or store does not pay).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from dataclasses import replace
from functools import cached_property

from shared import service as runner
from shared.blobs import BlobStore, open_blob_store
from shared.broker import Broker, connect, topology
from shared.database import create_engine, migrate
from shared.lifecycle import keep_startup_objects, stop_on_signals
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
    from services.ingest import service as ingest_service
    from shared.settings import github_api_url, github_token

    # No migration: ingest migrated before starting it, and a relay that starts while the database is
    # down must wait for it (its loop backs off), not exit.
    return ingest_service.relay(a.engine, a.broker, a.settings.routes_file, github_token(), github_api_url())


def webhooks(a: Adapters, on_append=lambda: None) -> Service:
    from services.ingest import service as ingest_service

    s = a.settings
    return ingest_service.webhooks(a.migrated_engine, s.webhook_secrets, s.max_body_bytes, on_append)


def dispatcher(a: Adapters) -> Service:
    from services.dispatcher import service as dispatcher_service

    return dispatcher_service.declare(a.broker, a.settings.routes_file)


def predictor(a: Adapters, task: str, model: str | None = None, **overrides) -> Service:
    """``overrides`` (prefetch, max_batch, max_wait; None: as declared) change the declared batch settings."""
    from services.predictor import service as predictor_service

    options = replace(predictor_service.OPTIONS, **{k: v for k, v in overrides.items() if v is not None})
    bundle = predictor_service.bundle(a.settings.models_dir, task, model)
    return predictor_service.declare(a.broker, a.settings.models_dir, bundle, options)


def store(a: Adapters, follower: bool = True) -> Service:
    from services.store import service as store_service

    return store_service.writer(a.migrated_engine, a.blobs, follower=follower)


def latest(a: Adapters) -> Service:
    from services.store import service as store_service

    return store_service.latest(a.migrated_engine, a.blobs)


def api(a: Adapters) -> Service:
    from services.api import service as api_service
    from shared.known import Known

    known = Known.read(a.settings.routes_file, a.settings.models_dir)
    return api_service.api(a.migrated_engine, a.settings.api_keys, a.broker, known)


def actions(a: Adapters, live: bool | None = None) -> Service:
    """Dry run unless ``live`` (default: ``WCML_ACTIONS_LIVE``); the live mode needs ``GITHUB_TOKEN``."""
    from services.actions import service as actions_service
    from shared.github import GitHubClient
    from shared.settings import github_api_url, github_token

    client = None
    if a.settings.actions_live if live is None else live:
        token = github_token()
        if not token:
            raise SettingsError("GITHUB_TOKEN", "is not set: acting on GitHub needs a token that may write")
        client = GitHubClient(token, base_url=github_api_url()).__enter__()  # one connection pool, for good
    return actions_service.declare(a.migrated_engine, a.settings.actions_policy, client)


def routed_tasks(a: Adapters) -> list[str]:
    from services.dispatcher import service as dispatcher_service

    return dispatcher_service.routed_tasks(a.settings.routes_file)


def pipeline(a: Adapters) -> list[Service]:
    """Every service, as the embedded mode runs them together."""
    outbox = relay(a)
    return [webhooks(a, on_append=outbox.wake), outbox, dispatcher(a),
            *(predictor(a, task) for task in routed_tasks(a)), store(a), actions(a), api(a)]


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
    from shared import wsgi
    from shared.http import app_for

    wsgi.require_server()  # before the relay starts beside it
    a.migrated_engine  # noqa: B018 - once, before the workers start

    def app():  # in each worker, after the fork: adapters of its own
        service = build(Adapters(a.settings))
        built = app_for(f"wcml-{service.name}", [service.blueprint()], service.ping)
        keep_startup_objects()
        return built

    with beside("relay" if relay else None):
        wsgi.serve(app, bind, workers, f"wcml-{build.__name__}", threads=threads)
    return 0


def store_with_follower(a: Adapters, follower_beside: bool) -> int:
    """``wcml store``: the results consumer here and, unless told not to, ``wcml latest`` in a process
    beside it (started once this one has migrated the database)."""
    service = store(a, follower=False)
    with beside("latest" if follower_beside else None):
        return consume(a, service)


@contextlib.contextmanager
def beside(command: str | None):
    """``wcml <command>`` as a child process while the block runs; stopped (SIGTERM, then SIGKILL after
    30 s: it resumes where it was) when the block ends."""
    child = subprocess.Popen([sys.executable, "-m", "services.cli", command]) if command else None
    try:
        yield child
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()


def replay(a: Adapters, *, quiet: bool, resume: str | None, **request) -> int:
    """``wcml replay``: the replay source, run here; it publishes into the broker the settings name
    (the embedded instance's queue file, when run in its folder)."""
    from services.api.comparison import stored_versions
    from services.ingest.commands import replay as run_replay
    from shared.event_routes import load_rules, tasks_of
    from shared.known import Known

    _shared_broker(a, "a replay")
    rules = load_rules(a.settings.routes_file)
    try:
        if not resume:  # a new run names only known tasks and model versions, else none is recorded
            known = Known(tuple(tasks_of(rules)), a.settings.models_dir)
            known.check_replay(request["tasks"], request["model"],
                               lambda task: stored_versions(a.migrated_engine, task))
        engine, stop = a.migrated_engine, stop_on_signals()
        topology.declare(a.broker, tasks_of(rules))  # it publishes task messages straight to them
        return run_replay(engine, a.broker, stop, resume=resume, quiet=quiet, rules=rules, **request)
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


def github_redeliver(a: Adapters, repo: str | None, hook_id: int | None, *, app: bool,
                     watch: float | None) -> int:
    """``wcml github redeliver``: once, or every ``watch`` seconds beside ingest until SIGTERM; a
    repository's webhook (``repo``, ``hook_id``, GITHUB_TOKEN) or the GitHub App's (GITHUB_APP_*)."""
    from services.ingest.github.commands import redeliver
    from shared.errors import UserError
    from shared.github import Hook
    from shared.settings import github_api_url, github_app, github_token

    if app == bool(repo or hook_id) or (not app and not (repo and hook_id)):
        raise UserError("give OWNER/REPO --hook ID (a repository's webhook) or --app (the GitHub App's)")
    hook = Hook() if app else Hook(repo, hook_id)
    return redeliver(a.engine, hook, token=github_token(), base_url=github_api_url(),
                     app=github_app() if app else None,
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
    from services.api.commands import compare as print_comparison
    from services.predictor.training.datasets import read_labelled

    truth = None
    if truth_file:
        issues, labels = read_labelled(truth_file)
        truth = {(issue.repo, issue.number): label for issue, label in zip(issues, labels, strict=True)}
    return print_comparison(a.engine, run_id, truth=truth, **models)


def actions_list(a: Adapters, params: dict, *, as_json: bool) -> int:
    """``wcml actions list``: the recorded actions, a line each (or JSON lines), newest first."""
    import json

    from shared.actions import FILTERS, list_actions

    items, next_cursor = list_actions(a.engine, {k: params.get(k) for k in (*FILTERS, "cursor", "limit")})
    for item in items:
        print(json.dumps(item) if as_json else
              f"{item['created_at']}  {item['mode']:7}  {item['state']:7}  {item['repo']}#{item['number']}  "
              f"{item['task']} {item['action']} {item['target'][:40]!r}  ({item['label']} "
              f"{item['confidence']:.2f}): {item['reason'] or ''}")
    if next_cursor:
        print(f"more: --cursor {next_cursor}", file=__import__("sys").stderr)
    return 0


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
