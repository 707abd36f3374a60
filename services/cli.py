"""`wcml`: the one command. Composition root: the only place (with embedded.py) that wires services."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

from shared import log as wcml_log
from shared import settings as wcml_settings
from shared.broker import ConsumeOptions, connect, topology
from shared.database import create_engine, migrate
from shared.errors import UserError
from shared.lifecycle import stop_on_signals

log = logging.getLogger("wcml")


class CliError(UserError):
    """A problem the user can fix; printed as one line, exit status 2."""


def load_settings(args, *required: str) -> wcml_settings.Settings:
    settings = wcml_settings.load(embedded_defaults=getattr(args, "embedded_defaults", False),
                                  needs=getattr(args, "needs", wcml_settings.URLS))
    wcml_settings.require(settings, *required)
    return settings


def _rules(settings):
    from services.dispatcher.rules import load_rules

    return load_rules(settings.routes_file)


def _consume(settings, queue: str, handler, tasks=(), options: ConsumeOptions | None = None) -> int:
    broker = connect(settings.broker_url)
    topology.declare(broker, tasks)
    stop = stop_on_signals()
    log.info("consuming %s", queue)
    broker.consume(queue, handler, stop, options or ConsumeOptions())
    broker.close()
    log.info("stopped cleanly")
    return 0


# -- services -------------------------------------------------------------------

def cmd_run(args) -> int:
    from services import embedded

    return embedded.serve(args.bind)


def cmd_migrate(args) -> int:
    settings = load_settings(args)
    migrate(settings.database_url)
    print("database schema is up to date")
    return 0


def _multiprocess_metrics() -> None:
    """Before prometheus_client is imported: gunicorn workers (and the relay) share one directory."""
    import os
    import tempfile

    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client imported before the multi-process directory was set")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="wcml-metrics-"))


def _serve_wsgi(factory, bind: str, workers: int, name: str, threads: int = 1) -> None:
    from gunicorn.app.base import BaseApplication

    from shared.metrics import worker_exited

    class App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            if threads > 1:  # concurrent requests in a worker share commits (ingest's group commit)
                self.cfg.set("worker_class", "gthread")
                self.cfg.set("threads", threads)
            self.cfg.set("proc_name", name)
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("accesslog", None)
            self.cfg.set("child_exit", lambda _arbiter, worker: worker_exited(worker.pid))

        def load(self):
            return factory()

    App().run()


def cmd_ingest(args) -> int:
    _multiprocess_metrics()
    settings = load_settings(args, "WCML_WEBHOOK_SECRETS")
    migrate(settings.database_url)
    relay = None if args.no_relay else subprocess.Popen([sys.executable, "-m", "services.cli", "relay"])

    def factory():
        from services.ingest.app import create_app
        from services.ingest.event_log import EventLog

        return create_app(EventLog(create_engine(settings.database_url)), settings.webhook_secrets,
                          settings.max_body_bytes)

    try:
        _serve_wsgi(factory, args.bind, args.workers, "wcml-ingest", threads=args.threads)
    finally:
        if relay is not None:
            relay.terminate()
            try:
                relay.wait(30)
            except subprocess.TimeoutExpired:
                log.warning("the relay did not stop within 30 s; killing it (it resumes where it was)")
                relay.kill()
    return 0


def cmd_relay(args) -> int:
    from services.ingest.event_log import EventLog
    from services.ingest.outbox_relay import OutboxRelay
    from services.ingest.replay import Replayer
    from services.ingest.replay_runs import ReplayRuns

    settings = load_settings(args)
    engine = create_engine(settings.database_url)
    broker = connect(settings.broker_url)
    topology.declare(broker)
    stop = stop_on_signals()
    replayer = Replayer(EventLog(engine), broker, ReplayRuns(engine))
    requests = threading.Thread(target=replayer.serve_requests, args=(stop,), daemon=True)
    requests.start()
    OutboxRelay(EventLog(engine), broker).run(stop)
    requests.join(30)
    broker.close()
    return 0


def cmd_replay(args) -> int:
    from tqdm import tqdm

    from services.ingest.event_log import EventLog
    from services.ingest.replay import Replayer
    from services.ingest.replay_runs import ReplayNotFound, ReplayRuns

    settings = load_settings(args)
    engine = create_engine(settings.database_url)
    migrate(settings.database_url)
    runs = ReplayRuns(engine)
    broker = connect(settings.broker_url)
    topology.declare(broker, args.task or ())
    replayer = Replayer(EventLog(engine), broker, runs)
    if args.resume:
        try:
            run = runs.get(args.resume)
        except ReplayNotFound as exc:
            raise CliError(str(exc)) from None
    else:
        filters = {"from_position": args.from_position, "to_position": args.to_position,
                   "since": args.since, "until": args.until, "repo": args.repo, "event": args.event,
                   "action": args.action}
        run = replayer.start(filters, tasks=args.task or (), model_version=args.model, created_by=args.by)
        print(f"replay {run.id}: {run.total} event(s) selected")
    stop = stop_on_signals()
    with tqdm(total=run.total, initial=run.published, unit="event", desc=run.id, disable=args.quiet) as bar:
        run = replayer.run(run.id, stop, rate=args.rate, on_progress=bar.update)
    print(f"replay {run.id}: {run.state}, {run.published}/{run.total} published"
          + (f" (resume with: wcml replay --resume {run.id})" if run.state != "done" else ""))
    broker.close()
    return 0 if run.state == "done" else 1


def cmd_dispatcher(args) -> int:
    from services.dispatcher.rules import tasks_of
    from services.dispatcher.worker import Dispatcher

    settings = load_settings(args)
    rules = _rules(settings)
    broker = connect(settings.broker_url)
    return _consume(settings, topology.EVENTS_QUEUE.name, Dispatcher(rules, broker).handle,
                    options=ConsumeOptions(prefetch=1000, max_batch=500),
                    tasks=tasks_of(rules))


def cmd_predictor(args) -> int:
    from services.predictor.bundle import load_bundle
    from services.predictor.worker import Predictor

    settings = load_settings(args)
    bundle = load_bundle(settings.models_dir, args.task, args.model)
    log.info("loaded %s model %s", args.task, bundle.version)
    broker = connect(settings.broker_url)
    worker = Predictor(args.task, settings.models_dir, broker, bundle)
    return _consume(settings, topology.task_queue(args.task).name, worker.handle, tasks=[args.task],
                    options=ConsumeOptions(prefetch=args.prefetch, max_batch=args.batch,
                                           max_wait=args.max_wait))


def cmd_store(args) -> int:
    from services.store.writer import PredictionWriter
    from shared.blobs import open_blob_store

    settings = load_settings(args)
    migrate(settings.database_url)
    writer = PredictionWriter(create_engine(settings.database_url), open_blob_store(settings.blob_url))
    # Large batches: one multi-row INSERT and one commit per batch is where the store's speed is.
    return _consume(settings, topology.RESULTS_QUEUE.name, writer.handle,
                    options=ConsumeOptions(prefetch=1000, max_batch=500))


def cmd_store_repair(args) -> int:
    from services.store.writer import repair
    from shared.blobs import open_blob_store

    settings = load_settings(args)
    written = repair(create_engine(settings.database_url), open_blob_store(settings.blob_url), args.since)
    print(f"wrote {written} missing or stale document(s)")
    return 0


def cmd_api(args) -> int:
    _multiprocess_metrics()
    settings = load_settings(args, "WCML_API_KEYS")
    migrate(settings.database_url)

    def factory():
        from services.store.api import create_app

        return create_app(create_engine(settings.database_url), settings.api_keys)

    _serve_wsgi(factory, args.bind, args.workers, "wcml-api")
    return 0


def cmd_predictions(args) -> int:
    from services.store import cli_queries

    engine = create_engine(load_settings(args).database_url)
    try:
        if args.latest:
            return cli_queries.latest_for_issue(engine, args.repo, args.issue, as_json=args.json)
        return cli_queries.list_predictions(engine, vars(args), args.cursor, args.limit, as_json=args.json)
    finally:
        engine.dispose()


# -- tools ----------------------------------------------------------------------

def cmd_healthcheck(args) -> int:
    """Container health: the service's own /healthz, or (consumers) the broker and database answer."""
    import urllib.request

    import sqlalchemy as sa

    try:
        if args.url:
            urllib.request.urlopen(args.url, timeout=4).close()
            return 0
        settings = load_settings(args)
        if not settings.embedded:
            from shared.broker.rabbitmq import RabbitBroker

            RabbitBroker(settings.broker_url, connect_attempts=1).queue_depth(topology.DEAD_QUEUE.name)
        engine = create_engine(settings.database_url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said in one line
        first_line = (str(exc).splitlines() or [""])[0]
        raise CliError(f"unhealthy: {type(exc).__name__}: {first_line}") from None
    return 0


def cmd_models_demo(args) -> int:
    from services.predictor.demo import ensure_demo_bundles

    settings = load_settings(args)
    from services.dispatcher.rules import tasks_of

    tasks = args.task or tasks_of(_rules(settings))
    ensure_demo_bundles(settings.models_dir, tasks)
    return 0


def _models_dir(args):
    import os
    from pathlib import Path

    return Path(args.models_dir or os.environ.get("WCML_MODELS_DIR") or "var/models")


def cmd_dataset_build(args) -> int:
    """Labelled issues from the event log or a GitHub API export, through the task's label rule."""
    from pathlib import Path

    from tqdm import tqdm

    from services.predictor import datasets
    from services.predictor.tasks import get_task

    task = get_task(args.task)
    if args.from_log:
        from services.ingest.event_log import EventLog, LogFilter

        settings = load_settings(args)
        event_log = EventLog(create_engine(settings.database_url))
        selection = LogFilter(repo=args.repo, event="issues")

        def envelopes():
            after = 0
            with tqdm(total=event_log.count(selection), desc="reading the event log", unit="event",
                      disable=args.quiet) as bar:
                while page := event_log.read(selection, after, 1000):
                    yield from page
                    after = page[-1].position
                    bar.update(len(page))

        histories = datasets.histories_from_log(envelopes())
    else:
        histories = list(datasets.read_export(Path(args.export)))
    examples, report = datasets.build(
        task, histories, lambda items: tqdm(items, desc=f"labelling ({task.name})", unit="issue",
                                            disable=args.quiet))
    datasets.write_dataset(Path(args.out), examples)
    counts = {label: sum(1 for _, got in examples if got == label) for label in task.labels}
    print(f"{report.examples} labelled issue(s) from {report.issues} ({report.skipped} left out by the "
          f"{task.name} rules) -> {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_train(args) -> int:
    from pathlib import Path

    from services.predictor.bundle import write_bundle
    from services.predictor.datasets import read_labelled
    from services.predictor.tasks import get_task
    from services.predictor.training import fingerprint, format_report, train

    task = get_task(args.task)
    issues, labels = read_labelled(Path(args.data))
    print(f"training {task.name} ({args.kind}) on {len(issues)} issues from {args.data}, "
          f"with cross-validation", file=sys.stderr)
    from tqdm import tqdm

    pipeline, metrics = train(task, issues, labels, kind=args.kind,
                              progress=lambda fits: tqdm(fits, desc=f"training {task.name}", unit="fit"))
    path = write_bundle(_models_dir(args), task, pipeline, data_size=len(issues), metrics=metrics,
                        data_fingerprint=fingerprint([task.text(i) for i in issues], labels),
                        data_source=str(args.data), version=args.version)
    print(format_report(metrics))
    print(f"\nmodel bundle -> {path}")
    return 0


def cmd_evaluate(args) -> int:
    from pathlib import Path

    from services.predictor.bundle import load_bundle
    from services.predictor.datasets import read_labelled
    from services.predictor.training import evaluate, format_report

    models_dir, version = _models_dir(args), args.model
    if args.model and Path(args.model).is_dir():  # a bundle directory: <models>/<task>/<version>
        bundle_dir = Path(args.model).resolve()
        models_dir, version = bundle_dir.parent.parent, bundle_dir.name
        if bundle_dir.parent.name != args.task:
            raise CliError(f"{args.model} is not a bundle of task {args.task}")
    bundle = load_bundle(models_dir, args.task, version)
    issues, labels = read_labelled(Path(args.data))
    report = evaluate(bundle, issues, labels)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def cmd_dead_list(args) -> int:
    settings = load_settings(args)
    broker = connect(settings.broker_url)
    topology.declare(broker)
    messages = broker.get(topology.DEAD_QUEUE.name, args.limit)
    for d in messages:
        death = (d.headers.get("x-death") or [{}])[0]
        print(json.dumps({"queue": d.headers.get("x-wcml-queue", death.get("queue")),
                          "reason": d.headers.get("x-wcml-reason", death.get("reason")),
                          "routing_key": _origin(d)[1],
                          "message_id": d.message_id, "bytes": len(d.body)}))
    if messages:
        broker.settle(messages, requeue=True)
    print(f"{len(messages)} dead-lettered message(s) shown", file=sys.stderr)
    return 0


def _origin(d) -> tuple[str, str]:
    """Where a dead letter came from: our own headers, else RabbitMQ's x-death record."""
    if "x-wcml-exchange" in d.headers:
        return d.headers["x-wcml-exchange"], d.headers.get("x-wcml-routing-key", "")
    death = (d.headers.get("x-death") or [{}])[0]
    keys = death.get("routing-keys") or [""]
    return death.get("exchange", ""), keys[0]


def _plain_headers(d) -> dict:
    return {k: v for k, v in d.headers.items() if not k.startswith("x-")}


def cmd_dead_requeue(args) -> int:
    from shared.broker import Outgoing

    settings = load_settings(args)
    broker = connect(settings.broker_url)
    topology.declare(broker)
    moved = 0
    # Only what is there now: a message that fails again comes back behind us and must not loop.
    limit = min(args.limit, broker.queue_depth(topology.DEAD_QUEUE.name))
    while moved < limit:
        batch = broker.get(topology.DEAD_QUEUE.name, min(100, limit - moved))
        if not batch:
            break
        broker.publish([Outgoing(*_origin(d), d.body, _plain_headers(d), d.message_id) for d in batch])
        broker.settle(batch, requeue=False)
        moved += len(batch)
    print(f"requeued {moved} message(s) to their original exchange")
    return 0


def cmd_sample(args) -> int:
    from services import samples

    settings = load_settings(args)
    try:
        status, body = samples.post_sample(args.url, settings.webhook_secrets[0], args.event, args.number)
    except OSError as exc:
        raise CliError(f"cannot reach {args.url}: {getattr(exc, 'reason', exc)}") from None
    print(f"{status} {body}")
    return 0 if status < 300 else 1


# -- argument parsing -------------------------------------------------------------

def cmd_compare(args) -> int:
    """Two model versions on the events of one replay; with --truth (a data set built from the
    event log's history by `wcml dataset build`), accuracy, precision and recall per model."""
    from services.predictor.datasets import read_labelled
    from services.store.comparison import compare_models

    settings = load_settings(args)
    truth = None
    if args.truth:
        issues, labels = read_labelled(Path(args.truth))
        truth = {(issue.repo, issue.number): label for issue, label in zip(issues, labels, strict=True)}
    report = compare_models(create_engine(settings.database_url), args.run_id, task=args.task,
                            model_a=args.model_a, model_b=args.model_b, truth=truth)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"replay {args.run_id}, task {report['task']}: {report['pairs']} event(s) scored by both, "
          f"agreement {report['agreement_rate']}")
    for side in (report["model_a"], report["model_b"]):
        line = f"  {side['model_version']}: {side['count']} prediction(s), labels {side['labels']}"
        if side["truth"]:
            t = side["truth"]
            line += (f"; on {t['evaluated']} with known labels: accuracy {t['accuracy']}, "
                     f"macro precision {t['macro_precision']}, macro recall {t['macro_recall']}")
        print(line)
    return 0


def _iso_time(text: str) -> str:
    from datetime import datetime

    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value.isoformat()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wcml", description="webcompat-ml pipeline: GitHub issue "
                                     "events in, ML predictions out. Configuration is by WCML_* variables.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text, embedded_defaults=False, needs=wcml_settings.URLS):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func, embedded_defaults=embedded_defaults, needs=needs)
        return p

    broker, database = ("WCML_BROKER_URL",), ("WCML_DATABASE_URL",)

    p = add("run", cmd_run, "embedded mode: every service in one process (SQLite, in-process queue)", True)
    p.add_argument("--bind", default="127.0.0.1:8080", help="host:port to serve on (default %(default)s)")
    add("migrate", cmd_migrate, "bring the database schema up to date", needs=database)
    p = add("ingest", cmd_ingest, "webhook endpoint (gunicorn) plus its outbox relay",
            needs=broker + database)
    p.add_argument("--bind", default="127.0.0.1:8000")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=16, help="request threads per worker (they share commits)")
    p.add_argument("--no-relay", action="store_true", help="do not start the outbox relay beside it")
    add("relay", cmd_relay, "outbox relay: publish committed events to the broker (and run queued replays)",
        needs=broker + database)
    p = add("replay", cmd_replay, "republish a slice of the event log through the pipeline as a recorded run",
            needs=broker + database)
    p.add_argument("--from-position", type=int, help="first log position (inclusive)")
    p.add_argument("--to-position", type=int, help="last log position (inclusive)")
    p.add_argument("--since", type=_iso_time, help="received at or after (ISO 8601)")
    p.add_argument("--until", type=_iso_time, help="received before (ISO 8601)")
    p.add_argument("--repo", help="owner/name")
    p.add_argument("--event", help="GitHub event, e.g. issues")
    p.add_argument("--action", help="event action, e.g. opened")
    p.add_argument("--task", action="append", help="only this task (repeatable; default: all routed)")
    p.add_argument("--model", help="score with this model version instead of each predictor's default")
    p.add_argument("--rate", type=float, help="at most this many events per second")
    p.add_argument("--by", help="who runs it (recorded; default: the login name)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = add("compare", cmd_compare, "compare two model versions on the events of one replay", needs=database)
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--task", required=True)
    p.add_argument("--model-a", required=True, help="e.g. the live model version")
    p.add_argument("--model-b", required=True, help="e.g. the version the replay forced")
    p.add_argument("--truth", help="labelled data set (JSON lines: repo, number, label), e.g. from "
                                   "`wcml dataset build TASK --from-log`")
    p.add_argument("--json", action="store_true")
    add("dispatcher", cmd_dispatcher, "route events to one task message per matching task", needs=broker)
    p = add("predictor", cmd_predictor, "score one task's messages with its model bundle", needs=broker)
    p.add_argument("--task", required=True)
    p.add_argument("--model", help="model version (default: the newest installed)")
    p.add_argument("--prefetch", type=int, default=512)
    p.add_argument("--batch", type=int, default=256, help="largest micro-batch")
    p.add_argument("--max-wait", type=float, default=0.005, help="seconds a partial batch waits")
    p = add("store", cmd_store, "persist predictions to the database and the blob store")
    store = p.add_subparsers(dest="store_command", metavar="ACTION")
    q = store.add_parser("repair", help="rewrite S3 documents that are missing or behind the database",
                         description="rewrite S3 documents that are missing or behind the database")
    q.add_argument("--since", help="only predictions stored since this ISO 8601 time")
    q.set_defaults(func=cmd_store_repair, needs=("WCML_DATABASE_URL", "WCML_BLOB_URL"))
    p = add("api", cmd_api, "query API and dashboard (gunicorn)", needs=database)
    p.add_argument("--bind", default="127.0.0.1:8001")
    p.add_argument("--workers", type=int, default=2)
    p = add("predictions", cmd_predictions, "list stored predictions (the API's filters) as a table or JSON",
            needs=database)
    for flag, text in (("repo", "owner/name"), ("issue", "issue number"), ("task", "task name"),
                       ("model", "model version"), ("label", "predicted label"),
                       ("min-confidence", "at least this confidence"), ("max-confidence", "at most this"),
                       ("since", "predicted at or after (ISO 8601)"), ("until", "predicted before"),
                       ("replay", "replay id; 'none': live only, 'any': replayed only"),
                       ("cursor", "next page: the cursor the previous page printed")):
        p.add_argument(f"--{flag}", help=text)
    p.add_argument("--limit", default="50", help="page size, 1-500 (default %(default)s)")
    p.add_argument("--latest", action="store_true", help="with --repo and --issue: latest per task")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    p = add("healthcheck", cmd_healthcheck, "exit 0 when this service's dependencies answer (for containers)")
    p.add_argument("--url", help="check this /healthz URL instead of the broker and database")

    p = add("models", None, "model bundles")
    models = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    q = models.add_parser("demo", help="train demo models for tasks that have none installed",
                          description="train demo models for tasks that have none installed")
    q.add_argument("--task", action="append", help="task (repeatable; default: every routed task)")
    q.set_defaults(func=cmd_models_demo, embedded_defaults=True)

    p = add("dataset", None, "training data sets")
    data = p.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    q = data.add_parser("build", help="labelled issues from the event log or a GitHub API export",
                        description="Apply a task's label rules to issue histories and write a data set "
                        "(JSON lines: repo, number, url, title, body, author, label).")
    q.add_argument("task")
    source = q.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-log", action="store_true", help="read issues webhooks from the event log")
    source.add_argument("--export", metavar="FILE", help="GitHub API export: JSON lines, one issue with "
                        "its events (under 'events') a line")
    q.add_argument("--repo", help="only this owner/name (with --from-log)")
    q.add_argument("--out", required=True, metavar="FILE", help="data set to write (.jsonl)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_dataset_build)
    p = add("train", cmd_train, "train a task's model on a data set and install it as a bundle")
    p.add_argument("task")
    p.add_argument("--data", required=True, metavar="FILE", help="data set (.jsonl) or NLBSE'24 CSV")
    p.add_argument("--kind", choices=("light", "heavy", "tuned"), default="light",  # tasks.base.MODEL_KINDS
                   help="light: hashed TF-IDF (default, fast); heavy: + MiniLM sentence embeddings (ml "
                        "extra); tuned: + all-mpnet-base-v2 tuned on the labels (tuned extra, slow)")
    p.add_argument("--version", help="bundle version (default: the current UTC time)")
    p.add_argument("--models-dir", help="default: $WCML_MODELS_DIR or var/models")
    p = add("evaluate", cmd_evaluate, "score an installed bundle on labelled issues")
    p.add_argument("task")
    p.add_argument("--model", help="bundle version or bundle directory (default: the newest installed)")
    p.add_argument("--data", required=True, metavar="FILE", help="data set (.jsonl) or NLBSE'24 CSV")
    p.add_argument("--models-dir", help="default: $WCML_MODELS_DIR or var/models")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = add("dead", None, "inspect and retry dead-lettered messages")
    dead = p.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    q = dead.add_parser("list", help="show dead-lettered messages with their reasons",
                        description="show dead-lettered messages with their reasons (left in place)")
    q.add_argument("--limit", type=int, default=100)
    q.set_defaults(func=cmd_dead_list, needs=broker)
    q = dead.add_parser("requeue", help="send dead-lettered messages back where they came from",
                        description="send dead-lettered messages back where they came from")
    q.add_argument("--limit", type=int, default=1000)
    q.set_defaults(func=cmd_dead_requeue, needs=broker)

    p = add("sample-webhook", cmd_sample, "post a signed sample issues.opened webhook", True)
    p.add_argument("--url", default="http://127.0.0.1:8080/webhooks/github")
    p.add_argument("--event", default="issues")
    p.add_argument("--number", type=int, default=1)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    wcml_log.setup(f"wcml-{args.command}")
    try:
        return args.func(args) or 0
    except UserError as exc:
        print(f"wcml {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
