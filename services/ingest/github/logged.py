"""What the event log already holds of a repository's issues, as a follower needs it before appending.

Reads ``event_log`` by (repo, issue_number) (index ``ix_event_log_repo_issue``): the keys of the
webhooks GitHub delivered for an issue (``history.webhook_keys``), the issue as last logged, and the
issues the log holds, for the deletion sweep.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from services.ingest.event_log import event_log
from services.ingest.github import history

c = event_log.c


def _payloads(engine: sa.Engine, repo: str, number: int, *, live: bool) -> list[dict[str, Any]]:
    """The issue's ``issues`` payloads in log order; with ``live``, only GitHub's own deliveries."""
    query = sa.select(c.payload).where(c.repo == repo, c.issue_number == number, c.event == "issues")
    if live:
        query = query.where(c.source == "live")
    with engine.connect() as conn:
        texts = conn.execute(query.order_by(c.position)).scalars().all()
    payloads = []
    for text in texts:
        try:
            payload = json.loads(text)
        except ValueError:
            continue
        if isinstance(payload, dict):
            payloads.append(payload)
    return payloads


def live_keys(engine: sa.Engine, repo: str, number: int) -> set[str]:
    """The event keys the issue's webhooks stand for: what an import must not log again (a webhook's
    ``deleted`` stands for ``deleted-<issue id>``)."""
    payloads = _payloads(engine, repo, number, live=True)
    keys = {key for key in history.webhook_keys(payloads) if key is not None}
    keys.update(history.deleted_key(p["issue"].get("id")) for p in payloads
                if p.get("action") == "deleted" and isinstance(p.get("issue"), dict))
    return keys


def last_issue(engine: sa.Engine, repo: str, number: int) -> dict[str, Any] | None:
    """The issue as the log's newest ``issues`` payload of it holds it (None: never logged)."""
    for payload in reversed(_payloads(engine, repo, number, live=False)):
        if isinstance(payload.get("issue"), dict):
            return payload["issue"]
    return None


def held_issues(engine: sa.Engine, repo: str, *, after: int, limit: int) -> list[int]:
    """Up to ``limit`` numbers, above ``after``, of the repository's issues the log holds and holds no
    deletion of, in order."""
    deleted = sa.select(c.issue_number).where(c.repo == repo, c.event == "issues", c.action == "deleted",
                                              c.issue_number.is_not(None))
    query = (sa.select(c.issue_number).distinct()
             .where(c.repo == repo, c.event == "issues", c.issue_number > after,
                    c.issue_number.not_in(deleted))
             .order_by(c.issue_number).limit(limit))
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())
