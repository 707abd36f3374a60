"""The import loop: pages of issues -> each issue's events -> webhook-shaped deliveries -> the log.

One page of issues at a time (100, oldest first): every issue's events are read (conditionally),
turned into deliveries (history.py) and appended with ``EventLog.append_many`` in batches; only
then are the page's validators saved and the cursor moved past it (state.py). So a run stopped
anywhere (Ctrl-C, a lost connection, a crash) resumes at the page it was on, and whatever of that
page was already appended comes back as a known delivery id: nothing lost, nothing twice.

A second import asks every page with ``If-None-Match``: an unchanged page of issues is a 304 (no
rate limit spent) and its issues are not read at all; a changed page reads its issues' events
conditionally, so only issues with new events cost a request each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.ingest.event_log import EventLog
from services.ingest.github import history
from services.ingest.github.state import ImportState
from services.ingest.webhook import WebhookDelivery
from shared.github import GitHubClient, Page, Validators, page_number

BATCH = 1000  # deliveries per append_many transaction


@dataclass
class ImportReport:
    repo: str
    pages: int = 0  # pages of issues read (200 or 304)
    issues: int = 0  # issues read (pull requests left out)
    pull_requests: int = 0  # left out
    appended: int = 0  # new events in the log
    duplicates: int = 0  # deliveries already logged (a resumed page, an overlapping --since)
    not_modified: int = 0  # 304 answers (issue pages and event pages)
    requests: int = 0
    waits: list[float] = field(default_factory=list)  # seconds waited (rate limits, retries)
    done: bool = False  # False: stopped at the issue limit; resume with --resume

    def summary(self) -> str:
        waited = f", waited {sum(self.waits):.0f} s ({len(self.waits)}x)" if self.waits else ""
        return (f"{self.repo}: {self.appended} event(s) appended, {self.duplicates} already logged, "
                f"{self.issues} issue(s) ({self.pull_requests} pull request(s) left out), "
                f"{self.pages} page(s), {self.requests} request(s), {self.not_modified} not modified"
                f"{waited}" + ("" if self.done else " (stopped early: continue with --resume)"))


@dataclass
class Progress:
    """What the progress bar shows after each page."""

    page: int
    last_page: int | None
    issues: int
    appended: int
    budget: str


class Importer:
    def __init__(self, log: EventLog, client: GitHubClient, state: ImportState, *, batch: int = BATCH):
        self.log = log
        self.client = client
        self.state = state
        self.batch = batch

    def run(self, repo: str, *, since: str | None = None, resume: bool = False,
            max_issues: int | None = None,
            on_progress: Callable[[Progress], None] | None = None) -> ImportReport:
        report = ImportReport(repo)
        repository = self.client.repository(repo)  # stops here on a bad token or a missing repository
        repo = repository.get("full_name") or repo
        report.repo = repo
        key = since or ""
        first = self.client.issues_url(repo, since)
        run = self.state.get(repo, key) if resume else None
        url = run.next_url if run is not None and run.state == "running" and run.next_url else None
        if url is None:
            self.state.start(repo, key, first)
            url = first
        while url:
            page = self.client.page(url, self.state.validators(url), what=repo)
            report.pages += 1
            if page.status == 304:
                self.state.advance(repo, key, page.next_url, pages=1, issues=0, events=0)
                url = page.next_url
                self._progress(on_progress, page, report)
                continue
            deliveries, validators, complete = self._page(repo, page, repository, report, max_issues)
            appended = self._append(deliveries, report)
            if not complete:
                self.state.advance(repo, key, url, pages=0, issues=0, events=appended)
                self._finish(report)
                return report
            self.state.save_validators([*validators, page.validators])
            issues = sum(1 for issue in page.items or [] if not issue.get("pull_request"))
            self.state.advance(repo, key, page.next_url, pages=1, issues=issues, events=appended)
            url = page.next_url
            self._progress(on_progress, page, report)
        report.done = True
        self._finish(report)
        return report

    def run_issues(self, repo: str, numbers: list[int]) -> ImportReport:
        """Just these issues with their events (score them now, as bugbug's predict endpoint does); what
        the log already holds is not appended again."""
        report = ImportReport(repo)
        repository = self.client.repository(repo)
        report.repo = repo = repository.get("full_name") or repo
        deliveries: list[WebhookDelivery] = []
        for number in numbers:
            issue = self.client.issue(repo, number)
            if issue.get("pull_request"):
                report.pull_requests += 1
                continue
            report.issues += 1
            events, _ = self._events(repo, number, conditional=False)
            deliveries.extend(history.deliveries(issue, events or [], repository))
        self._append(deliveries, report)
        report.done = True
        self._finish(report)
        return report

    def _page(self, repo: str, page: Page, repository: dict[str, Any], report: ImportReport,
              max_issues: int | None) -> tuple[list[WebhookDelivery], list[Validators], bool]:
        deliveries: list[WebhookDelivery] = []
        validators: list[Validators] = []
        for issue in page.items or []:
            if issue.get("pull_request"):
                report.pull_requests += 1
                continue
            if max_issues is not None and report.issues >= max_issues:
                return deliveries, validators, False
            report.issues += 1
            events, read = self._events(repo, issue["number"])
            validators.extend(read)
            if events is not None:
                deliveries.extend(history.deliveries(issue, events, repository))
        return deliveries, validators, True

    def _events(self, repo: str, number: int, conditional: bool = True
                ) -> tuple[list[dict[str, Any]] | None, list[Validators]]:
        """All of an issue's events, or None when every page of them is unchanged (304).

        A page that changed needs the whole history to rebuild the issue at each event, so pages
        answered 304 are then read again without validators."""
        pages: list[Page] = []
        url: str | None = self.client.events_url(repo, number)
        while url:
            known = self.state.validators(url) if conditional else None
            page = self.client.page(url, known, what=f"{repo}#{number}")
            pages.append(page)
            url = page.next_url
        if all(p.status == 304 for p in pages):
            return None, []
        events: list[dict[str, Any]] = []
        for i, page in enumerate(pages):
            if page.status == 304:
                page = pages[i] = self.client.page(page.url, None, what=f"{repo}#{number}")
            events.extend(page.items or [])
        return events, [p.validators for p in pages]

    def _append(self, deliveries: list[WebhookDelivery], report: ImportReport) -> int:
        appended = 0
        for start in range(0, len(deliveries), self.batch):
            results = self.log.append_many(deliveries[start:start + self.batch])
            new = sum(1 for r in results if r.new)
            appended += new
            report.duplicates += len(results) - new
        report.appended += appended
        return appended

    def _finish(self, report: ImportReport) -> None:
        counters = self.client.counters
        report.requests, report.not_modified = counters.requests, counters.not_modified
        report.waits = list(counters.waits)

    def _progress(self, on_progress, page: Page, report: ImportReport) -> None:
        if on_progress is not None:
            on_progress(Progress(page_number(page.url) or 1, page.last_page, report.issues, report.appended,
                                 self.client.budget.show()))
