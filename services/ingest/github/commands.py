"""``wcml github import OWNER/REPO``: GitHub history into the event log, with a progress bar;
``wcml github follow OWNER/REPO``: the log kept in step with it by polling; ``wcml github redeliver``."""

from __future__ import annotations

import json
import sys

from tqdm import tqdm

from services.ingest.event_log import EventLog
from services.ingest.github.importer import Importer, Progress
from services.ingest.github.state import ImportState
from shared.errors import UserError
from shared.github import DEFAULT_BASE_URL, GitHubClient, Hook
from shared.times import TimeFormatError, parse_time


def import_history(engine, repo: str, *, token: str | None, base_url: str = DEFAULT_BASE_URL,
                   since: str | None = None, issues: int | None = None, resume: bool = False,
                   numbers: list[int] | None = None, quiet: bool = False, as_json: bool = False,
                   api: str | None = None) -> int:
    """Import every issue of ``repo`` (open and closed, pull requests left out) and its events.

    ``api``: ``graphql`` (100 issues with their events a query; it needs a token) or ``rest`` (a
    page of issues, then each issue's events, conditionally: a re-import of what did not change
    costs only 304s); None: graphql where it can serve (a token), else rest, saying so. ``numbers``
    are read through REST whichever is given.

    ``since``: only issues updated at or after this time (ISO 8601); ``issues``: stop after this many
    issues (the run can be continued with ``resume``); ``resume``: continue the last unfinished run
    from its page instead of starting again at the first (which costs only 304s for what is there).
    ``numbers``: just these issues, with their events (their predictions follow within seconds).
    Prints the report (``as_json``: as one JSON object): a summary line, then one line per issue
    left out (``skipped OWNER/REPO#N: STATUS MESSAGE``). Returns the exit status (report.py):
    0 complete, 3 complete with skipped issues, 1 stopped at ``issues``."""
    try:
        since_text = parse_time(since).strftime("%Y-%m-%dT%H:%M:%SZ") if since else None
    except TimeFormatError as exc:
        raise UserError(f"--since: {exc}") from None
    if api is None:
        api = "graphql" if token else "rest"
        if not token and not numbers and not quiet:
            _stderr("no GITHUB_TOKEN: importing through GitHub's REST API (its GraphQL API needs a token)")
    if api not in ("graphql", "rest"):
        raise UserError(f"--api: graphql or rest, not {api!r}")
    if api == "graphql" and not token and not numbers:
        raise UserError("GitHub's GraphQL API needs a token: set GITHUB_TOKEN, or import with --api rest")
    with tqdm(unit="page", desc=f"import {repo}", disable=quiet, file=sys.stderr) as bar:

        def say(line: str) -> None:
            (bar.write if not quiet else _stderr)(line)

        def progress(p: Progress) -> None:
            if p.last_page and (bar.total or 0) < p.last_page:
                bar.total = p.last_page
            bar.n = p.page
            bar.set_postfix(issues=p.issues, events=p.appended, skipped=p.skipped, budget=p.budget,
                            refresh=False)
            bar.refresh()

        with GitHubClient(token, base_url=base_url, on_wait=say) as client:
            importer = Importer(EventLog(engine), client, ImportState(engine))
            report = importer.run_issues(repo, numbers) if numbers else importer.run(
                repo, since=since_text, resume=resume, max_issues=issues, on_progress=progress, api=api)
    print(json.dumps(report.as_dict()) if as_json else report.summary())
    return report.status


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def follow(engine, repo: str, *, token: str | None, base_url: str = DEFAULT_BASE_URL, every: float,
           quiet: bool = False, stop=None, report=None) -> int:
    """``wcml github follow``: tick every ``every`` seconds until ``stop`` is set (SIGTERM, Ctrl-C),
    printing each tick's summary (not with ``quiet``); exit 0. A first tick GitHub refuses (a bad
    token, a repository the token cannot see) stops it with that line (exit 2). ``report``: where
    its place goes after each tick (``follow_reports.to_broker``), if anywhere."""
    import threading

    from services.ingest.github.follow_loop import follow as follow_loop

    stop = stop or threading.Event()
    say = (lambda line: None) if quiet else (lambda line: print(line, flush=True))
    with GitHubClient(token, base_url=base_url, on_wait=_stderr, sleep=stop.wait) as client:
        follow_loop(engine, client, [repo], stop, every=every, say=say, report=report)
    return 0


def redeliver(engine, hook: Hook, *, token: str | None, base_url: str = DEFAULT_BASE_URL,
              app: tuple[str, str] | None = None, watch: bool = False, every: float = 300.0,
              stop=None) -> int:
    """``wcml github redeliver``: ask GitHub again for the deliveries the event log lacks; with
    ``watch``, every ``every`` seconds until ``stop`` is set (SIGTERM), each missed GUID once.
    ``app`` (App id, private key) for the App's own webhook (``Hook()``), ``token`` for a repository's."""
    import threading

    from services.ingest.github.redeliver import redeliver_missed

    stop = stop or threading.Event()
    asked: set[str] = set()
    with GitHubClient(token, base_url=base_url, on_wait=_stderr, app=app) as client:
        while True:
            report = redeliver_missed(client, EventLog(engine), hook, asked)
            print(report.summary(), flush=True)
            if not watch or stop.wait(every):
                return 0
