"""What an import remembers between runs, in two tables owned by ingest, beside the event log.

- ``github_imports``: one row per (repository, since): the next page of issues to read (the
  ``--resume`` cursor), counts, state.
- ``github_validators``: per URL read (a page of issues, a page of an issue's events), the
  ``ETag`` / ``Last-Modified`` GitHub sent and the page's ``next`` link, for conditional requests.

Why tables and not a JSON file: the cursor describes the event log, so it lives in the same
database (the distributed mode's PostgreSQL, the embedded SQLite file) whichever machine runs the
command, and it is written just after the events it covers are committed. Validators are saved
only after the events they stand for are in the log: a 304 then safely means "already imported".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from shared.database import backend_of, utcnow
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


@dataclass(frozen=True)
class ImportRun:
    repo: str
    since: str
    state: str
    next_url: str | None
    pages: int
    issues: int
    events: int


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
        return None if row is None else ImportRun(row.repo, row.since, row.state, row.next_url,
                                                   row.pages, row.issues, row.events)

    def start(self, repo: str, since: str, first_url: str) -> ImportRun:
        """A fresh run from the first page (the counts start again; validators are kept)."""
        now = utcnow()
        values = {"state": "running", "next_url": first_url, "pages": 0, "issues": 0, "events": 0,
                  "started_at": now, "updated_at": now, "finished_at": None}
        statement = (self.backend.upsert(github_imports, ["repo", "since"], set_=values)
                     .values(repo=repo, since=since, **values))
        with self.engine.begin() as conn:
            conn.execute(statement)
        return ImportRun(repo, since, "running", first_url, 0, 0, 0)

    def advance(self, repo: str, since: str, next_url: str | None, *, pages: int, issues: int,
                events: int) -> None:
        """Record that everything before ``next_url`` is in the log (None: the run is done)."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(github_imports.update().where(
                github_imports.c.repo == repo, github_imports.c.since == since).values(
                next_url=next_url, updated_at=now, state="running" if next_url else "done",
                finished_at=None if next_url else now,
                pages=github_imports.c.pages + pages, issues=github_imports.c.issues + issues,
                events=github_imports.c.events + events))

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
