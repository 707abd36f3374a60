"""Each declared service built from the adapters: the ``builder`` of an entry in
``shared.topology.SERVICES`` names one of these functions.

A builder takes the process's ``Adapters`` and the options its command (or the embedded pipeline)
gives, and returns the ``Service`` its package declares. It imports that package when called, so a
process holds only the service it runs (the predictor's model libraries, torch among them through
skops, cost memory and seconds at start that a dispatcher or store does not pay).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from services.bootstrap import Adapters
from shared.service import Service
from shared.settings import SettingsError


def ingest(a: Adapters, wake: Callable[[], None] = lambda: None) -> Service:
    """The webhook endpoint; ``wake`` is called after each append (in one process: the relay)."""
    from services.ingest import service as ingest_service

    s = a.settings
    return ingest_service.webhooks(a.migrated_engine, s.webhook_secrets, s.max_body_bytes, wake)


def relay(a: Adapters) -> Service:
    from services.ingest import service as ingest_service
    from shared.settings import github_api_url, github_token

    # No migration: ingest migrated before starting it, and a relay that starts while the database is
    # down must wait for it (its loop backs off), not exit.
    return ingest_service.relay(a.engine, a.broker, a.settings.routes_file, github_token(), github_api_url())


def dispatcher(a: Adapters) -> Service:
    from services.dispatcher import service as dispatcher_service

    return dispatcher_service.declare(a.broker, a.settings.routes_file)


def predictor(a: Adapters, task: str, model: str | None = None, **overrides) -> Service:
    """``overrides`` (prefetch, max_batch, max_wait; None: as declared) change the declared batch settings."""
    from services.predictor import service as predictor_service

    options = replace(predictor_service.OPTIONS, **{k: v for k, v in overrides.items() if v is not None})
    bundle = predictor_service.bundle(a.settings.models_dir, task, model)
    return predictor_service.declare(a.broker, a.settings.models_dir, bundle, options)


def store(a: Adapters, follower: bool = False) -> Service:
    """The results consumer; with ``follower``, the latest-documents follower as a thread beside it."""
    from services.store import service as store_service

    return store_service.writer(a.migrated_engine, a.blobs, follower=follower)


def latest(a: Adapters) -> Service:
    from services.store import service as store_service

    return store_service.latest(a.migrated_engine, a.blobs)


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
    return actions_service.declare(a.migrated_engine, a.broker, a.settings.actions_policy, client)


def api(a: Adapters) -> Service:
    from services.api import service as api_service
    from services.api.rate_limit import RateLimit
    from shared.known import Known

    s = a.settings
    known = Known.read(s.routes_file, s.models_dir)
    return api_service.api(a.migrated_engine, s.api_keys, a.broker, known, RateLimit(s.api_rate, s.api_burst))


def api_views(a: Adapters) -> Service:
    """The API's read models of replay runs and actions, kept from the owners' reports."""
    from services.api import service as api_service

    return api_service.views(a.migrated_engine)


def follow(a: Adapters, every: float | None = None, wake: Callable[[], None] = lambda: None) -> Service:
    """The GitHub follower over WCML_GITHUB_FOLLOW's repositories, every ``every`` seconds (default:
    WCML_GITHUB_FOLLOW_EVERY). In the embedded mode it runs only when GITHUB_TOKEN and
    WCML_GITHUB_FOLLOW are both set (else a service with nothing to run); ``wcml follow`` refuses to
    start without them. ``wake`` is called after a tick that appended (in one process: the relay)."""
    import logging

    from shared.settings import github_api_url, github_follow, github_follow_every, github_token

    repos, token = github_follow(), github_token()
    if not (repos and token):
        missing = "WCML_GITHUB_FOLLOW" if not repos else "GITHUB_TOKEN"
        if not a.settings.embedded:
            raise SettingsError(missing, "is not set: the follower polls GitHub for the repositories "
                                "WCML_GITHUB_FOLLOW names (OWNER/REPO, comma-separated) with GITHUB_TOKEN")
        if repos:
            logging.getLogger(__name__).warning("WCML_GITHUB_FOLLOW is set but GITHUB_TOKEN is not: "
                                                "not following %s", ", ".join(repos))
        return Service("follow")
    from services.ingest.github import follow_loop, follow_reports

    return follow_loop.service(a.migrated_engine, repos, token, github_api_url(),
                               every or github_follow_every(), wake, follow_reports.to_broker(a.broker))
