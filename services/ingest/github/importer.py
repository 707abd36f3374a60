"""The import loop: pages of issues -> each issue's events -> webhook-shaped deliveries -> the log.

This is the REST loop (``api="rest"``); ``api="graphql"`` reads 100 issues with their events a query
instead (graphql_import.py), with the same appending, skipping and reporting, defined here.

One page of issues at a time (100, oldest first): every issue's events are read (conditionally),
turned into deliveries (history.py) and appended with ``EventLog.append_many`` in batches; only
then are the page's validators saved and the cursor moved past it (state.py). So a run stopped
anywhere (Ctrl-C, a lost connection, a crash) resumes at the page it was on, and whatever of that
page was already appended comes back as a known delivery id: nothing lost, nothing twice.

No single issue stops an import: when GitHub will not serve an issue's events (404: transferred or
gone, 410: deleted, 451: unavailable for legal reasons, or a 5xx after the client's bounded
retries), the issue is recorded as skipped with GitHub's status and message and the page goes on.
A skipped issue adds nothing to the log, not even its opening: an issue is appended whole or not at
all. After its last page, a run asks again for every issue an earlier run skipped (one request each
while GitHub still refuses) and appends those it can now read. Anything else (a bad token, a lost
connection, a page of issues GitHub will not serve) stops the run as before; ``--resume`` goes on.

A second import asks every page with ``If-None-Match``: an unchanged page of issues is a 304 (no
rate limit spent) and its issues are not read at all; a changed page reads its issues' events
conditionally, so only issues with new events cost a request each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.ingest.event_log import EventLog
from services.ingest.github import history
from services.ingest.github.graphql_import import is_graphql_cursor, run_graphql
from services.ingest.github.report import ImportReport
from services.ingest.github.state import ImportState, Skip
from services.ingest.webhook import WebhookDelivery
from shared.github import GitHubClient, GitHubError, Page, Validators, page_number

BATCH = 1000  # deliveries per append_many transaction
SKIPPED_STATUSES = frozenset({404, 410, 451})  # and any 5xx the client's retries did not outlast


def skip_of(number: int, exc: GitHubError) -> Skip | None:
    """The skip this refusal of one issue's reads is, or None when it must stop the import (no answer
    at all, a bad token, a missing permission, a rate limit still spent)."""
    if exc.status is None or (exc.status not in SKIPPED_STATUSES and exc.status < 500):
        return None
    return Skip(number, exc.status, exc.reason or "")


@dataclass
class Progress:
    """What the progress bar shows after each page."""

    page: int
    last_page: int | None
    issues: int
    appended: int
    budget: str
    skipped: int = 0


@dataclass
class Work:
    """What reading some issues gave: deliveries to append, then the skips to record and the issues
    read whole, then the validators to save; ``complete`` False when the issue limit stopped it."""

    deliveries: list[WebhookDelivery] = field(default_factory=list)
    validators: list[Validators] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    read: list[int] = field(default_factory=list)
    complete: bool = True


class Importer:
    def __init__(self, log: EventLog, client: GitHubClient, state: ImportState, *, batch: int = BATCH):
        self.log = log
        self.client = client
        self.state = state
        self.batch = batch

    def run(self, repo: str, *, since: str | None = None, resume: bool = False,
            max_issues: int | None = None, on_progress: Callable[[Progress], None] | None = None,
            api: str = "rest") -> ImportReport:
        """Import every issue of ``repo`` with its events. ``api``: ``rest`` (pages of issues, then each
        issue's events, conditionally) or ``graphql`` (100 issues with their events a query:
        graphql_import.py); ``resume``: continue the unfinished run of the same API at its page."""
        if api == "graphql":
            return run_graphql(self, repo, since=since, resume=resume, max_issues=max_issues,
                               on_progress=on_progress)
        if api != "rest":
            raise ValueError(f"api must be rest or graphql, not {api!r}")
        report = ImportReport(repo)
        repository = self.client.repository(repo)  # stops here on a bad token or a missing repository
        repo = repository.get("full_name") or repo
        report.repo = repo
        key = since or ""
        first = self.client.issues_url(repo, since)
        run = self.state.get(repo, key) if resume else None
        if run is None or run.state != "running" or is_graphql_cursor(run.next_url):
            run = self.state.start(repo, key, first)  # running with no next page: the retries are left
        url = run.next_url
        pending = {s.number for s in self.state.skips(repo)}  # skipped before: read whole, forgotten
        while url:
            page = self.client.page(url, self.state.validators(url), what=repo)
            report.pages += 1
            if page.status == 304:
                self.state.advance(repo, key, page.next_url, pages=1, issues=0, events=0)
                url = page.next_url
                self._progress(on_progress, page, report)
                continue
            work = self._page(repo, page, repository, report, max_issues)
            appended = self._settle(repo, work, pending, report)
            if not work.complete:
                self.state.advance(repo, key, url, pages=0, issues=0, events=appended)
                return self._finish(report, self.state.skips(repo))
            self.state.save_validators([*work.validators, page.validators])
            issues = sum(1 for issue in page.items or [] if not issue.get("pull_request"))
            self.state.advance(repo, key, page.next_url, pages=1, issues=issues, events=appended)
            url = page.next_url
            self._progress(on_progress, page, report)
        appended = self._retry_skipped(repo, repository, run.started_at, pending, report)
        self.state.finish(repo, key, events=appended)
        report.done = True
        return self._finish(report, self.state.skips(repo))

    def run_issues(self, repo: str, numbers: list[int]) -> ImportReport:
        """Just these issues with their events (score them now, as bugbug's predict endpoint does); what
        the log already holds is not appended again. A refusal stops it (the caller says GitHub's
        answer); an issue read whole is no longer a skipped one."""
        report = ImportReport(repo)
        repository = self.client.repository(repo)
        report.repo = repo = repository.get("full_name") or repo
        work = Work()
        for number in numbers:
            issue = self.client.issue(repo, number)
            if issue.get("pull_request"):
                report.pull_requests += 1
                continue
            report.issues += 1
            events, _ = self._events(repo, number, conditional=False)
            work.deliveries.extend(history.deliveries(issue, events or [], repository))
            work.read.append(number)
        self._settle(repo, work, {s.number for s in self.state.skips(repo)}, report)
        report.done = True
        return self._finish(report)  # the repository's other skipped issues are not this answer

    def _page(self, repo: str, page: Page, repository: dict[str, Any], report: ImportReport,
              max_issues: int | None) -> Work:
        work = Work()
        for issue in page.items or []:
            if issue.get("pull_request"):
                report.pull_requests += 1
                continue
            if max_issues is not None and report.issues >= max_issues:
                work.complete = False
                return work
            report.issues += 1
            number = issue["number"]
            try:
                events, read = self._events(repo, number)
            except GitHubError as exc:
                if (skip := skip_of(number, exc)) is None:
                    raise
                work.skipped.append(skip)
                continue
            work.validators.extend(read)
            work.read.append(number)
            if events is not None:
                work.deliveries.extend(history.deliveries(issue, events, repository))
        return work

    def _retry_skipped(self, repo: str, repository: dict[str, Any], started: datetime | None,
                       pending: set[int], report: ImportReport) -> int:
        """Ask again for each issue skipped before this run began and not met by it since (a resumed
        run's earlier parts included): its events, then the issue itself when they changed."""
        work = Work()
        for old in self.state.skips(repo, tried_before=started):
            report.retried += 1
            try:
                events, read = self._events(repo, old.number)
                if events is not None:
                    issue = self.client.issue(repo, old.number)
                    if not issue.get("pull_request"):
                        work.deliveries.extend(history.deliveries(issue, events, repository))
            except GitHubError as exc:
                if (skip := skip_of(old.number, exc)) is None:
                    raise
                work.skipped.append(skip)
                continue
            work.validators.extend(read)
            work.read.append(old.number)
        appended = self._settle(repo, work, pending, report)
        self.state.save_validators(work.validators)
        return appended

    def _settle(self, repo: str, work: Work, pending: set[int], report: ImportReport) -> int:
        """Append the work's deliveries, then record its skips and forget the skipped issues it read
        whole (before any validator of theirs is saved: a 304 never hides a skip)."""
        appended = self._append(work.deliveries, report)
        recovered = [n for n in work.read if n in pending]
        self.state.settle_skips(repo, work.skipped, recovered)
        pending.difference_update(recovered)
        pending.update(s.number for s in work.skipped)
        report.recovered.extend(recovered)
        report.met += len(work.skipped)
        return appended

    def _events(self, repo: str, number: int, conditional: bool = True
                ) -> tuple[list[dict[str, Any]] | None, list[Validators]]:
        return read_events(self.client, self.state, repo, number, conditional)

    def _append(self, deliveries: list[WebhookDelivery], report: ImportReport) -> int:
        appended = 0
        for start in range(0, len(deliveries), self.batch):
            results = self.log.append_many(deliveries[start:start + self.batch])
            new = sum(1 for r in results if r.new)
            appended += new
            report.duplicates += len(results) - new
        report.appended += appended
        return appended

    def _finish(self, report: ImportReport, skipped: list[Skip] | None = None) -> ImportReport:
        counters = self.client.counters
        report.requests, report.not_modified = counters.requests, counters.not_modified
        report.queries, report.points = counters.queries, counters.points
        report.waits = list(counters.waits)
        report.skipped = skipped or []
        return report

    def _progress(self, on_progress, page: Page, report: ImportReport) -> None:
        if on_progress is not None:
            on_progress(Progress(page_number(page.url) or 1, page.last_page, report.issues, report.appended,
                                 self.client.budget.show(), report.met))


def read_events(client: GitHubClient, state: ImportState, repo: str, number: int, conditional: bool = True
                ) -> tuple[list[dict[str, Any]] | None, list[Validators]]:
    """All of an issue's events and the validators of their pages (to save once they are logged), or
    None when every page of them is unchanged (304) since validators were last saved for it.

    A page that changed needs the whole history to rebuild the issue at each event, so pages
    answered 304 are then read again without validators. A refusal (404, 410, …) raises GitHubError."""
    pages: list[Page] = []
    url: str | None = client.events_url(repo, number)
    while url:
        known = state.validators(url) if conditional else None
        page = client.page(url, known, what=f"{repo}#{number}")
        pages.append(page)
        url = page.next_url
    if all(p.status == 304 for p in pages):
        return None, []
    events: list[dict[str, Any]] = []
    for i, page in enumerate(pages):
        if page.status == 304:
            page = pages[i] = client.page(page.url, None, what=f"{repo}#{number}")
        events.extend(page.items or [])
    return events, [p.validators for p in pages]
