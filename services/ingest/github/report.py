"""What one ``wcml github import`` run did: a summary line (then one line per skipped issue), or JSON,
and the exit status a script tests.

Exit status: ``COMPLETE`` (0) every issue listed is in the log; ``SKIPPED`` (3) complete but for the
issues in ``skipped`` (GitHub answered 404, 410, 451, or a 5xx that outlasted its retries; a later
run tries them again); ``STOPPED`` (1) stopped at ``--max-issues`` (continue with ``--resume``). A
refusal that stops the whole import (a bad token, a missing repository, a page of issues GitHub
would not serve) raises instead: 2, from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.ingest.github.state import Skip

COMPLETE, STOPPED, SKIPPED = 0, 1, 3
OUTCOMES = {COMPLETE: "complete", SKIPPED: "complete with skipped issues", STOPPED: "stopped early"}


@dataclass
class ImportReport:
    repo: str
    api: str = "rest"  # rest | graphql: what read the pages
    pages: int = 0  # pages of issues read (200 or 304)
    issues: int = 0  # issues listed and handled, skipped ones included (pull requests left out)
    pull_requests: int = 0  # left out
    appended: int = 0  # new events in the log
    duplicates: int = 0  # deliveries already logged (a resumed page, an overlapping --since)
    not_modified: int = 0  # 304 answers (issue pages and event pages)
    requests: int = 0  # HTTP requests (GraphQL queries among them)
    queries: int = 0  # GraphQL queries answered
    points: int = 0  # GraphQL points they cost (GitHub's rateLimit.cost, summed)
    waits: list[float] = field(default_factory=list)  # seconds waited (rate limits, retries)
    done: bool = False  # False: stopped at the issue limit; resume with --resume
    met: int = 0  # issues this run could not read (those of its pages and those it retried)
    retried: int = 0  # issues skipped by an earlier run, asked for again after the last page
    recovered: list[int] = field(default_factory=list)  # skipped before, now in the log whole
    skipped: list[Skip] = field(default_factory=list)  # the repository's issues still left out

    @property
    def status(self) -> int:
        if not self.done:
            return STOPPED
        return SKIPPED if self.skipped else COMPLETE

    def summary(self) -> str:
        """One line, then one line per skipped issue: ``skipped OWNER/REPO#N: STATUS MESSAGE``."""
        waited = f", waited {sum(self.waits):.0f} s ({len(self.waits)}x)" if self.waits else ""
        again = f", {len(self.recovered)} skipped before now read" if self.recovered else ""
        if self.api == "graphql":  # no pull requests among the issues, no conditional requests
            read = (f"{self.issues} issue(s), {self.pages} page(s), {self.queries} GraphQL queries "
                    f"costing {self.points} points, {self.requests} request(s)")
        else:
            read = (f"{self.issues} issue(s) ({self.pull_requests} pull request(s) left out), "
                    f"{self.pages} page(s), {self.requests} request(s), {self.not_modified} not modified")
        line = (f"{self.repo}: {self.appended} event(s) appended, {self.duplicates} already logged, "
                f"{read}{waited}{again}")
        if not self.done:
            line += " (stopped early: continue with --resume)"
        elif self.skipped:
            line += (f"; complete with {len(self.skipped)} skipped issue(s), which the next import "
                     f"tries again")
        else:
            line += "; complete"
        return "\n".join([line, *(f"skipped {self.repo}#{s.number}: {s.status} {s.message}"
                                  + (f" ({s.attempts} attempts)" if s.attempts > 1 else "")
                                  for s in self.skipped)])

    def as_dict(self) -> dict[str, Any]:
        """The report for ``--json``: ``outcome`` and ``exit_status`` first, then the counts and lists."""
        return {
            "repo": self.repo, "outcome": OUTCOMES[self.status], "exit_status": self.status, "api": self.api,
            "appended": self.appended, "already_logged": self.duplicates, "issues": self.issues,
            "pull_requests": self.pull_requests, "pages": self.pages, "requests": self.requests,
            "not_modified": self.not_modified, "queries": self.queries, "points": self.points,
            "waited_seconds": round(sum(self.waits), 3),
            "retried": self.retried, "recovered": list(self.recovered),
            "skipped": [{"number": s.number, "status": s.status, "message": s.message,
                         "attempts": s.attempts, "first_at": _iso(s.first_at), "tried_at": _iso(s.tried_at)}
                        for s in self.skipped],
        }


def _iso(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None
