"""What an import remembers between runs, in three tables owned by ingest, beside the event log.

- ``github_imports``: one row per (repository, since): the next page of issues to read (the
  ``--resume`` cursor), counts, state.
- ``github_validators``: per URL read (a page of issues, a page of an issue's events), the
  ``ETag`` / ``Last-Modified`` GitHub sent and the page's ``next`` link, for conditional requests.
- ``github_import_skips``: per (repository, issue number), an issue the import could not read
  (GitHub's status and message: 404, 410, 451, or a 5xx that outlasted its retries). None of its
  events is in the log on its account; the row goes when a later run reads the issue whole.

Why tables and not a JSON file: the cursor describes the event log, so it lives in the same
database (the distributed mode's PostgreSQL, the embedded SQLite file) whichever machine runs the
command, and it is written just after the events it covers are committed. Validators are saved
only after the events they stand for are in the log: a 304 then safely means "already imported";
a page's skipped issues are recorded before its validators, so a 304 never hides one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from shared.database import as_utc, backend_of, utcnow
from shared.github import Validators

metadata = sa.MetaData()
github_imports = sa.Table(
    "github_imports", metadata,
    sa.Column("repo", sa.String(255), primary_key=True),
    sa.Column("since", sa.String(32), primary_key=True),  # "" for a full import
    sa.Column("state", sa.String(16), nullable=False),  # running | done
    sa.Column("next_url", sa.Text),
    sa.Column("pages", sa.Integer, nullable=False, server_default="0"),
    sa.Column("issues", sa.Integer, nullable=False, server_default="0"),
    sa.Column("events", sa.Integer, nullable=False, server_default="0"),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)
github_validators = sa.Table(
    "github_validators", metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # sha256 of the URL
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("etag", sa.String(255)),
    sa.Column("last_modified", sa.String(64)),
    sa.Column("next_url", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
github_import_skips = sa.Table(
    "github_import_skips", metadata,
    sa.Column("repo", sa.String(255), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("status", sa.Integer, nullable=False),  # GitHub's HTTP status
    sa.Column("message", sa.Text, nullable=False),  # GitHub's own message, one line
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("tried_at", sa.DateTime(timezone=True), nullable=False),  # the last attempt
)


@dataclass(frozen=True)
class Skip:
    """An issue left out: its number and GitHub's answer (``attempts`` runs so far)."""

    number: int
    status: int
    message: str
    attempts: int = 1
    first_at: datetime | None = None
    tried_at: datetime | None = None


@dataclass(frozen=True)
class ImportRun:
    repo: str
    since: str
    state: str
    next_url: str | None
    pages: int
    issues: int
    events: int
    started_at: datetime | None = None  # kept by --resume: the run's first part


def _key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


class ImportState:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.backend = backend_of(engine)

    def get(self, repo: str, since: str) -> ImportRun | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(github_imports).where(
                github_imports.c.repo == repo, github_imports.c.since == since)).first()
        return None if row is None else ImportRun(row.repo, row.since, row.state, row.next_url, row.pages,
                                                   row.issues, row.events, as_utc(row.started_at))

    def start(self, repo: str, since: str, first_url: str) -> ImportRun:
        """A fresh run from the first page (the counts start again; validators are kept)."""
        now = utcnow()
        values = {"state": "running", "next_url": first_url, "pages": 0, "issues": 0, "events": 0,
                  "started_at": now, "updated_at": now, "finished_at": None}
        statement = (self.backend.upsert(github_imports, ["repo", "since"], set_=values)
                     .values(repo=repo, since=since, **values))
        with self.engine.begin() as conn:
            conn.execute(statement)
        return ImportRun(repo, since, "running", first_url, 0, 0, 0, now)

    def advance(self, repo: str, since: str, next_url: str | None, *, pages: int, issues: int,
                events: int) -> None:
        """Record that everything before ``next_url`` is in the log (None: every page is; what is
        left is to ask again for the issues skipped before the run began, then ``finish``)."""
        with self.engine.begin() as conn:
            conn.execute(github_imports.update().where(
                github_imports.c.repo == repo, github_imports.c.since == since).values(
                next_url=next_url, updated_at=utcnow(),
                pages=github_imports.c.pages + pages, issues=github_imports.c.issues + issues,
                events=github_imports.c.events + events))

    def finish(self, repo: str, since: str, *, events: int) -> None:
        """The run is done: every page and every earlier skipped issue was asked for."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(github_imports.update().where(
                github_imports.c.repo == repo, github_imports.c.since == since).values(
                state="done", updated_at=now, finished_at=now, events=github_imports.c.events + events))

    def validators(self, url: str) -> Validators | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(github_validators)
                               .where(github_validators.c.key == _key(url))).first()
        return None if row is None else Validators(row.url, row.etag, row.last_modified, row.next_url)

    def save_validators(self, items: Iterable[Validators]) -> None:
        rows = [{"key": _key(v.url), "url": v.url, "etag": v.etag, "last_modified": v.last_modified,
                 "next_url": v.next_url, "updated_at": utcnow()} for v in items
                if v.etag or v.last_modified]
        if not rows:
            return
        statement = self.backend.upsert(github_validators, ["key"],
                                        updating=("etag", "last_modified", "next_url", "updated_at"))
        with self.engine.begin() as conn:
            conn.execute(statement, rows)

    # -- skipped issues ------------------------------------------------------------------------

    def skips(self, repo: str, *, tried_before: datetime | None = None) -> list[Skip]:
        """The repository's skipped issues by number; with ``tried_before``, those last tried earlier."""
        query = sa.select(github_import_skips).where(github_import_skips.c.repo == repo)
        if tried_before is not None:
            query = query.where(github_import_skips.c.tried_at < tried_before)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(github_import_skips.c.number)).all()
        return [Skip(r.number, r.status, r.message, r.attempts, as_utc(r.first_at), as_utc(r.tried_at))
                for r in rows]

    def settle_skips(self, repo: str, skipped: Iterable[Skip], read: Iterable[int] = ()) -> None:
        """One transaction: record ``skipped`` (a known one counts one more attempt) and forget the
        issues now ``read`` whole (call it once their events are in the log)."""
        now = utcnow()
        rows = [{"repo": repo, "number": s.number, "status": s.status, "message": s.message,
                 "attempts": 1, "first_at": now, "tried_at": now} for s in skipped]
        read = sorted(set(read))
        if not rows and not read:
            return
        with self.engine.begin() as conn:
            if read:
                conn.execute(github_import_skips.delete().where(
                    github_import_skips.c.repo == repo, github_import_skips.c.number.in_(read)))
            if rows:
                conn.execute(self.backend.upsert(
                    github_import_skips, ["repo", "number"], {"attempts": github_import_skips.c.attempts + 1},
                    updating=("status", "message", "tried_at")), rows)
