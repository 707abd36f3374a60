"""The one-shot commands that print: ``wcml replay``, ``dead list|requeue``, ``actions list``,
``compare``, ``github import|redeliver`` and ``dataset build``. Each takes the process's adapters
and the command's arguments, calls into the service that owns the work, and returns the exit status.
"""

from __future__ import annotations

import json
import sys

from services.bootstrap import Adapters
from shared import topology
from shared.lifecycle import stop_on_signals


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


def github_follow(a: Adapters, repo: str, *, every: float | None, quiet: bool) -> int:
    """``wcml github follow``: a tick every ``every`` seconds (default WCML_GITHUB_FOLLOW_EVERY, else 60)
    in the foreground until SIGTERM or Ctrl-C; each tick's summary on standard output (not with
    ``quiet``). Token: GITHUB_TOKEN. Where a broker is configured (WCML_BROKER_URL, or the embedded
    instance of this folder), its place is reported to the API after each tick."""
    from services.ingest.github.commands import follow
    from services.ingest.github.follow_reports import to_broker
    from shared.settings import github_api_url, github_follow_every, github_token

    report = to_broker(a.broker) if a.settings.broker_url else None
    return follow(a.migrated_engine, repo, token=github_token(), base_url=github_api_url(),
                  every=every or github_follow_every(), quiet=quiet, stop=stop_on_signals(), report=report)


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
    """``wcml actions list``: the actions service's record, a line each (or JSON lines), newest first."""
    from services.actions.commands import list_recorded

    return list_recorded(a.engine, params, as_json=as_json)


def dead_letters(a: Adapters, action: str, limit: int) -> int:
    """``wcml dead list|requeue`` on the broker's ``dead`` queue."""
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
