"""The import loop through GraphQL (``Importer.run(api="graphql")``): pages of 100 issues with their
events -> webhook-shaped deliveries -> the log, resumable on GitHub's cursor.

The same machinery as the REST loop (importer.py): a page's deliveries are appended first, then the
cursor is moved past the page (``github_imports.next_url`` holds ``graphql:<cursor>``; ``graphql:``
alone is the first page), so a run stopped anywhere resumes with ``--resume`` at the page it was on
and what of that page was already appended is left out as already logged. An issue whose further
timeline pages GitHub will not serve (a 5xx that outlasted the client's retries, or ``NOT_FOUND``:
deleted or transferred since its page was read) is skipped whole and recorded, as REST's are; after
the last page the issues an earlier run skipped are asked for again (through REST, one request
each, as the REST loop does). A run left unfinished by the REST loop is not resumed here (its
cursor is a REST page): the import starts at the first page, and what the log already holds is
left out by its event key.

GraphQL has no conditional requests: a second import reads every page again (3 points a page) and
appends nothing it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from services.ingest.github import history
from services.ingest.github.graphql import ISSUES_PER_QUERY, GraphQLReader, PageOfIssues
from services.ingest.github.report import ImportReport
from services.ingest.github.state import Skip
from shared.github import GitHubError, GraphQLRefusal

if TYPE_CHECKING:
    from services.ingest.github.importer import Importer, Progress

PREFIX = "graphql:"


def cursor_text(cursor: str | None) -> str:
    """What the state's ``next_url`` holds for the page after ``cursor`` (None: the first page)."""
    return PREFIX + (cursor or "")


def is_graphql_cursor(next_url: str | None) -> bool:
    return bool(next_url) and next_url.startswith(PREFIX)


def gone(number: int, exc: GitHubError) -> Skip | None:
    """An issue GraphQL no longer finds between its page and its further timeline pages (deleted or
    transferred meanwhile: ``NOT_FOUND``), skipped as REST's 404 is; None for any other refusal."""
    if isinstance(exc, GraphQLRefusal) and exc.error_type == "NOT_FOUND":
        return Skip(number, 404, exc.reason or "Not Found")
    return None


def run_graphql(importer: Importer, repo: str, *, since: str | None, resume: bool, max_issues: int | None,
                on_progress: Callable[[Progress], None] | None) -> ImportReport:
    """Import ``repo`` through GraphQL; the contract of ``Importer.run``."""
    from services.ingest.github.importer import Progress, Work, skip_of

    client, state = importer.client, importer.state
    report = ImportReport(repo, api="graphql")
    repository = client.repository(repo)  # REST: the payloads' repository; stops on a bad token
    report.repo = repo = repository.get("full_name") or repo
    key = since or ""
    run = state.get(repo, key) if resume else None
    if run is None or run.state != "running" or (run.next_url and not is_graphql_cursor(run.next_url)):
        run = state.start(repo, key, cursor_text(None))
    next_url = run.next_url
    pending = {s.number for s in state.skips(repo)}  # skipped before: read whole, forgotten
    reader = GraphQLReader(client)
    pages_done = run.pages
    while next_url:
        page = reader.page(repo, next_url.removeprefix(PREFIX) or None, since)
        report.pages += 1
        work = Work()
        for read in page.issues:
            if max_issues is not None and report.issues >= max_issues:
                work.complete = False
                break
            report.issues += 1
            try:
                events = reader.rest_of_events(repo, read)
            except GitHubError as exc:
                if (skip := skip_of(read.number, exc) or gone(read.number, exc)) is None:
                    raise
                work.skipped.append(skip)
                continue
            work.read.append(read.number)
            work.deliveries.extend(history.deliveries(read.issue, events, repository))
        appended = importer._settle(repo, work, pending, report)
        if not work.complete:
            state.advance(repo, key, next_url, pages=0, issues=0, events=appended)
            return importer._finish(report, state.skips(repo))
        next_url = cursor_text(page.end_cursor) if page.has_next and page.end_cursor else None
        state.advance(repo, key, next_url, pages=1, issues=len(page.issues), events=appended)
        pages_done += 1
        if on_progress is not None:
            on_progress(Progress(pages_done, _last_page(page), report.issues, report.appended,
                                 client.points.show(), report.met))
    appended = importer._retry_skipped(repo, repository, run.started_at, pending, report)
    state.finish(repo, key, events=appended)
    report.done = True
    return importer._finish(report, state.skips(repo))


def _last_page(page: PageOfIssues) -> int | None:
    return None if page.total is None else max(1, -(-page.total // ISSUES_PER_QUERY))
