"""The follower as a loop: a tick of each repository every ``every`` seconds until stopped, with its
metrics. ``wcml github follow`` runs it in the foreground; the ``follow`` service (``wcml follow``,
and ``wcml run`` when GITHUB_TOKEN and WCML_GITHUB_FOLLOW are set) runs it as a thread.

Metrics (``/metrics`` of the process that serves them: ``wcml run``'s app in the embedded mode):
``wcml_follow_lag_seconds`` (per repository: the time since the last tick that finished began;
every change GitHub made before then is in the log), ``wcml_follow_ticks_total`` (by outcome),
``wcml_follow_appended_total`` and ``wcml_follow_not_modified_total`` (GitHub's 304s, which cost no
rate limit). After each tick the repository's place goes to the API as a report (``follow_reports``),
so the dashboard shows the lag too, in either mode.

A tick that fails (GitHub unreachable, a 5xx outlasting the client's retries, the database not
answering) is logged and tried again at the next; only the first tick's refusal of a repository (a
bad token, a repository the token cannot see) stops the loop, since no later tick would do better.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from services.ingest.github.follow import SWEEP, Follower
from services.ingest.github.follow_reports import Report
from services.ingest.github.follow_state import FollowState
from shared import metrics
from shared.database import utcnow
from shared.errors import TransientError
from shared.github import GitHubClient, GitHubError
from shared.service import Service

log = logging.getLogger(__name__)

TICKS = metrics.counter("wcml_follow_ticks_total", "Follower ticks, by repository and outcome",
                        ("repo", "outcome"))
APPENDED = metrics.counter("wcml_follow_appended_total", "Log entries a follower appended", ("repo",))
NOT_MODIFIED = metrics.counter("wcml_follow_not_modified_total",
                               "GitHub's 304 answers to a follower (no rate limit spent)", ("repo",))
LAG = metrics.gauge("wcml_follow_lag_seconds",
                    "Seconds since the follower's last finished tick began (changes before it are logged)",
                    ("repo",))
LAG_REFRESH = 1.0  # seconds: how often the lag gauge is brought up to date between ticks


def follow(engine: sa.Engine, client: GitHubClient, repos: Sequence[str], stop: threading.Event, *,
           every: float, say: Callable[[str], None] = log.info, sweep: int = SWEEP,
           wake: Callable[[], None] = lambda: None, report: Report | None = None) -> None:
    """Tick each of ``repos`` every ``every`` seconds until ``stop`` is set (the wait between ticks
    ends at once then); ``say`` gets each tick's summary line; ``wake`` is called after a tick that
    appended (in one process: the relay, which would otherwise find the new entries when it polls);
    ``report`` gets the repository's place after each tick (``follow_reports``: to the API)."""
    follower = Follower(engine, client, sweep=sweep)
    follows = FollowState(engine)
    synced = {repo: follows.get(repo).synced_at for repo in repos}
    first = True
    while not stop.is_set():
        for repo in repos:
            if stop.is_set():
                break
            try:
                tick = follower.tick(repo)
            except (GitHubError, sa.exc.DBAPIError) as exc:
                if first and isinstance(exc, GitHubError) and not isinstance(exc, TransientError):
                    raise
                TICKS.labels(repo, "failed").inc()
                log.warning("follow %s: %s (tried again in %.0f s)", repo, exc, every)
                continue
            synced[repo] = tick.synced_at
            TICKS.labels(repo, "done").inc()
            APPENDED.labels(repo).inc(tick.appended)
            NOT_MODIFIED.labels(repo).inc(tick.not_modified)
            say(tick.summary())
            if tick.appended:
                wake()
            if report is not None:
                report(follows.get(tick.repo))
        first = False
        if _rest(stop, every, synced):
            return


def _rest(stop: threading.Event, seconds: float, synced: dict) -> bool:
    """Wait ``seconds`` (True at once when ``stop`` is set), the lag gauges kept up to date."""
    waited = 0.0
    while True:
        now = utcnow()
        for repo, at in synced.items():
            if at is not None:
                LAG.labels(repo).set(max(0.0, (now - at).total_seconds()))
        if waited >= seconds:
            return stop.is_set()
        step = min(LAG_REFRESH, seconds - waited)
        if stop.wait(step):
            return True
        waited += step


def service(engine: sa.Engine, repos: Sequence[str], token: str | None, base_url: str, every: float,
            wake: Callable[[], None] = lambda: None, report: Report | None = None) -> Service:
    """The ``follow`` service: one loop over ``repos``, its places reported with ``report``."""

    def loop(stop: threading.Event) -> None:
        with GitHubClient(token, base_url=base_url, on_wait=log.warning, sleep=stop.wait) as client:
            follow(engine, client, repos, stop, every=every, wake=wake, report=report)

    return Service("follow", loops=(("github-follow", loop),))
