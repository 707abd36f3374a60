"""`wcml`: the one command. Argument parsing and dispatch: a command for each service the system
declares (``shared/topology.py``), run by ``distributed``; ``wcml run`` by ``embedded``; the one-shot
commands by ``commands`` or the service that owns them."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from shared import log as wcml_log
from shared import settings as wcml_settings
from shared import topology
from shared.actions import FILTERS as ACTION_FILTERS
from shared.errors import UserError
from shared.replays import FILTER_HELP
from shared.times import time_argument
from shared.topology import BLOBS, BROKER, DATABASE

RUN_BIND = "127.0.0.1:8080"  # where `wcml run` serves, and where `wcml sample-webhook` posts


def settings_of(args) -> wcml_settings.Settings:
    """The settings this command needs (``args.needs``); a missing one stops it with one line."""
    settings = wcml_settings.load(embedded_defaults=args.embedded, needs=args.needs)
    wcml_settings.require(settings, *args.requires)
    return settings


def adapters(args):
    from services.bootstrap import Adapters

    return Adapters(settings_of(args))


# -- dispatch: one function a command, each a call into the service or module that owns it -------

def serve(args) -> int:  # `wcml run`
    from services import embedded

    return embedded.serve(args.bind)


def run_service(args) -> int:
    """A declared service as this process, until SIGTERM (``services.distributed``)."""
    spec = topology.service(args.command)
    if spec.http:
        from shared.wsgi import multiprocess_metrics

        multiprocess_metrics()  # before any service module imports prometheus_client
    from services import distributed

    beside = spec.beside is not None and not getattr(args, f"no_{spec.beside.replace('-', '_')}")
    settings = settings_of(args)
    if getattr(args, "metrics_bind", None):
        bind = wcml_settings.bind_of("--metrics-bind", args.metrics_bind)
        settings = dataclasses.replace(settings, metrics_bind=bind)
    from services.bootstrap import Adapters

    a = Adapters(settings)
    metrics_port = getattr(args, "metrics_port", None)
    if metrics_port is None:
        metrics_port = wcml_settings.metrics_port(spec.name, spec.metrics)
    return distributed.run(spec, a, task=getattr(args, "task", None),
                           options={name: getattr(args, name) for name in args.options}, beside=beside,
                           bind=getattr(args, "bind", ""), workers=getattr(args, "workers", 1),
                           threads=getattr(args, "threads", 1), metrics_port=metrics_port)


def operate(args) -> int:
    """replay, predictions, actions list, compare, store repair, dead, dataset build, github."""
    from services import commands
    from services.api import commands as queries
    from services.store import commands as store

    a = adapters(args)
    if args.command == "replay":
        filters = {k: getattr(args, k) for k in FILTER_HELP}  # the replay filters (shared.replays)
        return commands.replay(a, filters=filters, tasks=args.task or (), model=args.model, rate=args.rate,
                               created_by=args.by, resume=args.resume, quiet=args.quiet)
    if args.command == "actions":
        return commands.actions_list(a, vars(args), as_json=args.json)
    if args.command == "predictions":
        return queries.predictions(a.engine, vars(args), latest=args.latest, as_json=args.json)
    if args.command == "compare":
        return commands.compare(a, args.run_id, task=args.task, model_a=args.model_a, model_b=args.model_b,
                                truth_file=args.truth, as_json=args.json)
    if args.command == "store":
        return store.repair(a.engine, a.blobs, args.since)
    if args.command == "dead":
        return commands.dead_letters(a, args.dead_command, args.limit)
    if args.command == "github" and args.github_command == "follow":
        return commands.github_follow(a, args.repo, every=args.every, quiet=args.quiet)
    if args.command == "github" and args.github_command == "redeliver":
        return commands.github_redeliver(a, args.repo, args.hook, app=args.app, watch=args.watch)
    if args.command == "github":
        return commands.github_import(a, args.repo, since=args.since, issues=args.max_issues,
                                      resume=args.resume, numbers=args.issue, quiet=args.quiet,
                                      as_json=args.json, api=args.api)
    return commands.dataset_build(a, args.task, args.out, repo=args.repo, export=args.export,
                                  quiet=args.quiet)


def model_command(args) -> int:  # train, evaluate, models demo
    from services import bootstrap
    from services.predictor.training import commands, demo

    models = Path(args.models_dir) if args.models_dir else settings_of(args).models_dir
    if args.command == "train":
        return commands.train(args.task, args.data, models, kind=args.kind, version=args.version)
    if args.command == "evaluate":
        return commands.evaluate(args.task, args.data, models, model=args.model, as_json=args.json,
                                 kind=args.kind, leave_one_repo_out=args.leave_one_repo_out)
    demo.ensure_demo_bundles(models, args.task or bootstrap.routed_tasks(adapters(args)))
    return 0


def tool(args) -> int:  # migrate, healthcheck, sample-webhook
    from services.samples import post_sample_command
    from shared.database import migrate_command
    from shared.health import check

    if args.command == "migrate":
        return migrate_command(settings_of(args).database_url)
    if args.command == "healthcheck":
        return check(None if args.url else settings_of(args), args.url)
    return post_sample_command(settings_of(args), args.url, args.event, args.number)


# -- argument parsing -------------------------------------------------------------

def service_needs(spec: topology.ServiceSpec) -> tuple[str, ...]:
    """The URLs a service's command needs: its own, and those of the service it starts beside it."""
    beside = topology.service(spec.beside).needs if spec.beside else ()
    return tuple(dict.fromkeys((*spec.needs, *beside)))


def service_command(p: argparse.ArgumentParser, spec: topology.ServiceSpec) -> None:
    """A declared service's flags: what its entry implies (``--bind``/``--workers``/``--metrics-bind``
    for an HTTP one, ``--metrics-port`` for one with a metrics port, ``--task`` for one run per task,
    ``--no-<service>`` for what it starts beside it), then its own (``SERVICE_FLAGS``), whose values go
    to its builder."""
    if spec.http:
        p.add_argument("--bind", default=f"127.0.0.1:{spec.http}", help="host:port (default %(default)s)")
        p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        p.add_argument("--metrics-bind", metavar="HOST:PORT",
                       help="also serve /metrics, without a key, there and nothing else (default: "
                       "$WCML_METRICS_BIND; none: /metrics only on --bind, with a key)")
    if spec.metrics:
        variable = wcml_settings.metrics_port_variable(spec.name)
        p.add_argument("--metrics-port", type=int, metavar="PORT",
                       help=f"serve /metrics and /healthz on this port (default: ${variable}, else "
                       f"{spec.metrics}; 0: not at all)")
    if spec.per_task:
        p.add_argument("--task", required=True)
    if spec.beside:
        p.add_argument(f"--no-{spec.beside}", action="store_true",
                       help=f"do not start `wcml {spec.beside}` beside it (run it on its own)")
    p.set_defaults(options=SERVICE_FLAGS.get(spec.name, lambda _: ())(p))


def ingest_flags(p: argparse.ArgumentParser) -> tuple[str, ...]:
    p.add_argument("--threads", type=int, default=16, help="request threads per worker (they share commits)")
    return ()  # a server setting, not the builder's


def predictor_flags(p: argparse.ArgumentParser) -> tuple[str, ...]:
    p.add_argument("--model", help="model version (default: the newest installed)")
    for flag, dest, kind, text in (
            ("prefetch", "prefetch", int, "default: as declared (so are the next two)"),
            ("batch", "max_batch", int, "largest micro-batch"),
            ("max-wait", "max_wait", float, "batch wait (s)")):
        p.add_argument(f"--{flag}", dest=dest, metavar=flag.upper().replace("-", "_"), type=kind, help=text)
    return ("model", "prefetch", "max_batch", "max_wait")


def actions_flags(p: argparse.ArgumentParser) -> tuple[str, ...]:
    p.add_argument("--live", action="store_const", const=True,
                   help="act on GitHub (GITHUB_TOKEN; or WCML_ACTIONS_LIVE=1)")
    return ("live",)


def follow_flags(p: argparse.ArgumentParser) -> tuple[str, ...]:
    p.add_argument("--every", type=positive_seconds, metavar="SECONDS",
                   help="seconds between ticks (default: WCML_GITHUB_FOLLOW_EVERY, else 60)")
    return ("every",)


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


# A service's own flags, by its name: each adds them and returns the names its builder takes.
SERVICE_FLAGS = {"ingest": ingest_flags, "predictor": predictor_flags, "actions": actions_flags,
                 "follow": follow_flags}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wcml", description="webcompat-ml pipeline: GitHub issue "
                                     "events in, ML predictions out. Configuration is by WCML_* variables.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, text, needs=(BROKER, DATABASE, BLOBS), requires=(), embedded=False, parent=sub):
        p = parent.add_parser(name, help=text, description=text)
        p.set_defaults(func=func, needs=needs, requires=requires, embedded=embedded)
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--json", action="store_true", help="JSON output, where the command prints a report")
        return p

    def group(name, text):
        return add(name, None, text).add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")

    p = add("run", serve, "embedded mode: every service in one process, its files under var/", embedded=True)
    p.add_argument("--bind", default=RUN_BIND, help="host:port (default %(default)s)")
    add("migrate", tool, "bring the database schema up to date", needs=(DATABASE,))
    for spec in topology.SERVICES:  # a command for each declared service, in the declaration's order
        service_command(add(spec.name, run_service, spec.help, service_needs(spec), requires=spec.requires),
                        spec)
    q = add("list", operate, "recorded actions, done and would-be, newest first", (DATABASE,),
            parent=sub.choices["actions"].add_subparsers(dest="actions_command", metavar="ACTION"))
    for name, text in {**ACTION_FILTERS, "cursor": "next_cursor of the last page", "limit": "1-500"}.items():
        q.add_argument(f"--{name}", help=text)
    q = add("repair", operate, "rewrite blob documents missing or behind the database", (DATABASE, BLOBS),
            parent=sub.choices["store"].add_subparsers(dest="store_command", metavar="ACTION"))
    q.add_argument("--since", type=time_argument, help="only predictions stored since (ISO 8601)")
    p = add("replay", operate, "republish a slice of the event log as a recorded run", (BROKER, DATABASE))
    for name, text in FILTER_HELP.items():  # the replay filters, as shared.replays defines them
        kind = int if name.endswith("position") else time_argument if name in ("since", "until") else str
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, help=text)
    p.add_argument("--task", action="append", help="only this task (repeatable; default: all routed)")
    p.add_argument("--model", help="score with this model version instead of each predictor's default")
    p.add_argument("--rate", type=float, help="at most this many events per second")
    p.add_argument("--by", help="who runs it (recorded; default: the login name)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run")
    gh = group("github", "GitHub: import a repository's history, recover missed deliveries, follow it")
    f = add("follow", operate, "keep the event log in step with a repository by polling, until stopped",
            (DATABASE,), parent=gh)
    f.add_argument("repo", metavar="OWNER/REPO")
    f.add_argument("--every", type=positive_seconds, default=None, metavar="SECONDS",
                   help="seconds between ticks (default: WCML_GITHUB_FOLLOW_EVERY, else 60)")
    p = add("import", operate, "a repository's issues and events into the event log", (DATABASE,), parent=gh)
    q = add("redeliver", operate, "ask GitHub again for deliveries the log lacks", (DATABASE,), parent=gh)
    p.add_argument("repo", metavar="OWNER/REPO")
    q.add_argument("repo", metavar="OWNER/REPO", nargs="?", help="with --hook: a repository's webhook")
    p.add_argument("--since", type=time_argument, help="only issues updated at or after (ISO 8601)")
    p.add_argument("--issue", type=int, action="append", metavar="N", help="just this issue (repeatable)")
    p.add_argument("--max-issues", type=int, metavar="N", help="stop after N issues (then --resume)")
    p.add_argument("--resume", action="store_true", help="continue the last unfinished import at its page")
    p.add_argument("--api", choices=("graphql", "rest"),
                   help="graphql: 100 issues with their events a query (the default with a token); rest: "
                   "conditional pages (the default without one)")
    q.add_argument("--hook", type=int, help="the repository webhook's id")
    q.add_argument("--app", action="store_true", help="the GitHub App's webhook (GITHUB_APP_* variables)")
    q.add_argument("--watch", type=float, metavar="SECONDS", help="again every SECONDS, until stopped")
    p = add("compare", operate, "compare two model versions on the events of one replay", (DATABASE,))
    p.add_argument("run_id", metavar="RUN_ID")
    for flag, text in (("task", None), ("model-a", "e.g. the live model"), ("model-b", "e.g. the forced")):
        p.add_argument(f"--{flag}", required=True, help=text)
    p.add_argument("--truth", type=Path, help="labelled data set, e.g. from `wcml dataset build --from-log`")
    p = add("predictions", operate, "list stored predictions (the API's filters)", (DATABASE,))
    for flag in "repo issue task model label min-confidence max-confidence since until cursor".split():
        p.add_argument(f"--{flag}")
    p.add_argument("--replay", help="a replay run id; 'none': live only; 'any': replayed only")
    p.add_argument("--limit", default="50", help="page size, 1-500 (default %(default)s)")
    p.add_argument("--latest", action="store_true", help="with --repo and --issue: latest per task")
    dead = group("dead", "inspect and retry dead-lettered messages")
    for name, text, limit in (("list", "show dead letters with their reasons (left in place)", 100),
                              ("requeue", "send dead letters back where they came from", 1000)):
        add(name, operate, text, (BROKER,), parent=dead).add_argument("--limit", type=int, default=limit)
    q = add("build", operate, "labelled issues from the event log or a GitHub API export", (),
            parent=group("dataset", "training data sets"))
    q.add_argument("task")
    source = q.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-log", action="store_true", help="read issues webhooks from the event log")
    source.add_argument("--export", type=Path, help="GitHub API export (JSON lines: issue with 'events')")
    q.add_argument("--repo", help="only this owner/name (with --from-log)")
    q.add_argument("--out", type=Path, required=True, help="data set to write (.jsonl)")
    for name, text in (("train", "train a task's model on a data set and install it as a bundle"),
                       ("evaluate", "score an installed bundle on labelled issues")):
        p = add(name, model_command, text, needs=())
        p.add_argument("task")
        p.add_argument("--data", type=Path, required=True, help="data set (.jsonl) or NLBSE'24 CSV")
        p.add_argument("--models-dir", help="default: $WCML_MODELS_DIR, else var/models")
        p.add_argument("--kind", choices=("light", "heavy", "tuned"), help="light: hashed TF-IDF; heavy: + "
                       "MiniLM (ml extra; issuetype's default where installed); tuned: + tuned mpnet (slow)")
    train, evaluate = sub.choices["train"], p
    train.add_argument("--version", help="bundle version (default: the current UTC time)")
    evaluate.add_argument("--model", help="bundle version or directory (default: the newest installed)")
    evaluate.add_argument("--leave-one-repo-out", action="store_true", help="leave each repo out in turn")
    q = add("demo", model_command, "first models where none is installed (starter, else demo)", needs=(),
            embedded=True, parent=group("models", "model bundles"))
    q.add_argument("--task", action="append", help="task (repeatable; default: every routed task)")
    q.add_argument("--models-dir", help="default: $WCML_MODELS_DIR, else var/models")
    p = add("healthcheck", tool, "exit 0 when the broker (and the database, if set) answer", needs=(BROKER,))
    p.add_argument("--url", help="check this /healthz URL instead of the broker and database")
    p = add("sample-webhook", tool, "post a signed sample issues.opened webhook", needs=(), embedded=True)
    for flag, default in (("url", f"http://{RUN_BIND}/webhooks/github"), ("event", "issues"), ("number", 1)):
        p.add_argument(f"--{flag}", default=default, type=type(default))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
