"""One tick of a follower: the event log brought in step with a GitHub repository by polling, for
those whose webhooks GitHub cannot reach. Beside webhooks it fills only what they missed.

A tick:

1. asks, conditionally, for the issues updated since the repository's cursor (``sort=updated``,
   oldest change first; ``follow_state.py``): an unchanged repository answers 304, which costs no
   rate limit; a changed one lists the changed issues (pull requests left out);
2. reads each changed issue's events, conditionally (the validators the import keeps, ``state.py``):
   an issue whose events did not change (a comment, a body edit) costs nothing more;
3. builds the issue's deliveries as the import does (``history.deliveries``) and leaves out those a
   webhook already logged: the keys of the issue's live deliveries (``history.webhook_keys``) are the
   keys the same events have when read through the API. ``EventLog.append_many`` leaves out the keys
   an import (or an earlier tick) logged;
4. appends a page's deliveries, then saves their validators, then moves the cursor past the page
   (the newest ``updated_at`` listed, less ``OVERLAP``): a follower stopped anywhere reads again only
   what it had not recorded, and appends nothing twice; the next page starts from that newest change
   (``Follower._next``), not at GitHub's next page number;
5. sweeps ``SWEEP`` of the issues the log holds (round robin by number, conditional: 304s once each
   was read) for deletions, which no listing shows: an issue whose events answer 410 gets one
   ``issues`` ``deleted`` delivery (``history.deleted``, the issue as last logged), unless a webhook's
   ``deleted`` of it is logged. A 404 (transferred, or no longer visible to the token: GitHub does not
   say which) or a 451 is left alone: nothing is appended for it, and the sweep asks again next round.

Rate limits are waited out as the client does (``shared/github.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.ingest.event_log import EventLog
from services.ingest.github import history, logged
from services.ingest.github.follow_state import FollowState
from services.ingest.github.importer import BATCH, read_events
from services.ingest.github.state import ImportState
from services.ingest.webhook import WebhookDelivery
from shared.database import utcnow
from shared.github import GitHubClient, GitHubError, Validators

log = logging.getLogger(__name__)

OVERLAP = timedelta(seconds=5)  # the cursor stays this far behind the newest change logged
SWEEP = 20  # issues the log holds asked for deletion each tick
LEFT_ALONE = frozenset({404, 451})  # an issue's refusals that append nothing (410: deleted)
GITHUB_TIME = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class Tick:
    """What one tick of one repository did."""

    repo: str
    issues: int = 0  # changed issues listed (pull requests left out)
    swept: int = 0  # issues the deletion sweep asked for
    appended: int = 0  # new log entries
    deleted: int = 0  # of them, deletions found (``deleted`` events)
    webhooks: int = 0  # deliveries left out because a webhook had logged them
    requests: int = 0  # HTTP requests sent (304s among them)
    not_modified: int = 0  # 304s: no rate limit spent
    cursor: str | None = None
    synced_at: datetime | None = None  # when the tick began: every change before it is in the log
    left_alone: list[tuple[int, int]] = field(default_factory=list)  # (issue number, GitHub's status)

    def summary(self) -> str:
        return (f"follow {self.repo}: {self.issues} changed issue(s), {self.appended} appended "
                f"({self.deleted} deletion(s), {self.webhooks} already logged by webhooks), "
                f"{self.requests} request(s), {self.not_modified} not modified; cursor {self.cursor or '-'}")


@dataclass
class _Page:
    deliveries: list[WebhookDelivery] = field(default_factory=list)
    validators: list[Validators] = field(default_factory=list)


def moved(cursor: str | None, newest: str | None, overlap: timedelta = OVERLAP) -> str | None:
    """The cursor after a page whose newest ``updated_at`` is ``newest``: that, less ``overlap``,
    never behind where it was."""
    if not newest:
        return cursor
    at = datetime.fromisoformat(newest.replace("Z", "+00:00")).astimezone(UTC) - overlap
    candidate = at.strftime(GITHUB_TIME)
    return candidate if cursor is None or candidate > cursor else cursor


class Follower:
    """Ticks over one client and one database; the repositories' objects are read once each."""

    def __init__(self, engine: sa.Engine, client: GitHubClient, *, sweep: int = SWEEP,
                 overlap: timedelta = OVERLAP):
        self.engine = engine
        self.client = client
        self.log = EventLog(engine)
        self.state = ImportState(engine)
        self.follows = FollowState(engine)
        self.sweep = sweep
        self.overlap = overlap
        self._repositories: dict[str, dict[str, Any]] = {}

    def tick(self, repo: str) -> Tick:
        """Bring the log in step with ``repo`` once. Raises GitHubError when GitHub refuses the
        repository or a page of its issues, or cannot be reached; what was logged before stays."""
        started = utcnow()
        requests, not_modified = self.client.counters.requests, self.client.counters.not_modified
        repository = self._repository(repo)
        name = repository.get("full_name") or repo
        tick = Tick(name)
        followed = self.follows.get(name)
        cursor, seen, listed = followed.cursor, set(), set()
        url: str | None = self.client.changed_issues_url(name, cursor)
        while url:
            page = self.client.page(url, self.state.validators(url), what=name)
            work = _Page()
            newest = None
            for issue in page.items or []:
                changed = str(issue.get("updated_at") or "")
                newest = max(newest or "", changed)
                if issue.get("pull_request") or (issue["number"], changed) in listed:
                    continue  # a pull request, or the change that started this page, read already
                listed.add((issue["number"], changed))
                tick.issues += 1
                seen.add(issue["number"])
                self._issue(name, repository, issue["number"], issue, work, tick)
            appended = self._append(work.deliveries, tick)
            self.state.save_validators([*work.validators, page.validators])
            cursor = moved(cursor, newest, self.overlap)
            self.follows.advance(name, cursor, appended=appended)
            url = self._next(name, page.next_url, page.items or [], newest)
        swept_to, appended = self._sweep(name, repository, followed.swept_to, seen, tick)
        self.follows.finish(name, synced_at=started, swept_to=swept_to, appended=appended)
        tick.cursor, tick.synced_at = cursor, started
        tick.requests = self.client.counters.requests - requests
        tick.not_modified = self.client.counters.not_modified - not_modified
        return tick

    def _next(self, repo: str, next_url: str | None, items: list[dict[str, Any]], newest: str | None
              ) -> str | None:
        """The page after a full one: the changes from the newest one listed on (``since`` is
        inclusive: that second's again, left out as logged), not GitHub's next page number, whose
        pages shift while issues are updated meanwhile (an issue updated during the tick moves to the
        end, and the issue after it would slip onto a page already read, for good, as the cursor
        passes it). Page numbers only when a whole page changed within one second."""
        if next_url is None:
            return None
        oldest = min((str(i.get("updated_at") or "") for i in items), default="")
        if newest and newest != oldest:
            return self.client.changed_issues_url(repo, newest)
        return next_url

    def _repository(self, repo: str) -> dict[str, Any]:
        if repo not in self._repositories:
            self._repositories[repo] = self.client.repository(repo)
        return self._repositories[repo]

    def _sweep(self, repo: str, repository: dict[str, Any], after: int, seen: set[int],
               tick: Tick) -> tuple[int, int]:
        """Ask for the next ``sweep`` issues the log holds; where the next sweep starts, and what it
        appended."""
        numbers = logged.held_issues(self.engine, repo, after=after, limit=self.sweep) if self.sweep else []
        work = _Page()
        for number in numbers:
            if number not in seen:
                tick.swept += 1
                self._issue(repo, repository, number, None, work, tick)
        appended = self._append(work.deliveries, tick)
        self.state.save_validators(work.validators)
        return (numbers[-1] if numbers and len(numbers) == self.sweep else 0), appended

    def _issue(self, repo: str, repository: dict[str, Any], number: int, issue: dict[str, Any] | None,
               work: _Page, tick: Tick) -> None:
        """One issue's new deliveries into ``work``: ``issue`` as listed, or None (then read when its
        events changed)."""
        try:
            events, read = read_events(self.client, self.state, repo, number)
            if events is None:
                return  # every event of it was logged when these validators were saved
            if issue is None:
                issue = self.client.issue(repo, number)
                if issue.get("pull_request"):
                    return
        except GitHubError as exc:
            if exc.status == 410:
                self._deleted(repo, repository, number, issue, work, tick)
            elif exc.status in LEFT_ALONE:
                tick.left_alone.append((number, exc.status))
                log.info("follow %s#%d: GitHub answered %s (%s): left alone", repo, number, exc.status,
                         exc.reason)
            else:
                raise
            return
        webhooks = logged.live_keys(self.engine, repo, number)
        built = history.deliveries(issue, events or [], repository)
        kept = [d for d in built if d.event_key not in webhooks]
        tick.webhooks += len(built) - len(kept)
        work.deliveries.extend(kept)
        work.validators.extend(read)

    def _deleted(self, repo: str, repository: dict[str, Any], number: int, listed: dict[str, Any] | None,
                 work: _Page, tick: Tick) -> None:
        last = logged.last_issue(self.engine, repo, number) or listed
        if last is None:
            return  # never logged: there is nothing to delete
        if history.deleted_key(last.get("id")) in logged.live_keys(self.engine, repo, number):
            return
        work.deliveries.append(history.deleted(last, repository))

    def _append(self, deliveries: list[WebhookDelivery], tick: Tick) -> int:
        appended = 0
        for start in range(0, len(deliveries), BATCH):
            batch = deliveries[start:start + BATCH]
            for delivery, result in zip(batch, self.log.append_many(batch), strict=True):
                if result.new:
                    appended += 1
                    tick.deleted += delivery.action == "deleted"
        tick.appended += appended
        return appended
