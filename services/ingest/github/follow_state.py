"""What a follower remembers between ticks, per repository: ``github_follows``, owned by ingest.

- ``cursor``: GitHub's time (``YYYY-MM-DDTHH:MM:SSZ``) the next tick asks for the issues updated since:
  the newest ``updated_at`` a tick has logged, less a few seconds of overlap (GitHub's ``since`` is
  inclusive at second resolution; what the overlap lists again is logged already and dedupes);
- ``synced_at``: when the last tick that finished began: whatever GitHub changed before it is in the
  log (the follower's lag is the time since);
- ``swept_to``: the last issue number the deletion sweep asked for (0: it starts again at the first);
- ``ticks`` and ``appended``: counts over the follower's life.

In the same database as the event log and the import's validators, written just after the events a
tick logged are committed: a follower stopped anywhere reads again what it had not recorded, and
the keys in the log leave out what it had appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from shared.database import as_utc, backend_of, utcnow

metadata = sa.MetaData()
github_follows = sa.Table(
    "github_follows", metadata,
    sa.Column("repo", sa.String(255), primary_key=True),
    sa.Column("cursor", sa.String(32)),  # None: from the repository's first issue
    sa.Column("synced_at", sa.DateTime(timezone=True)),
    sa.Column("swept_to", sa.Integer, nullable=False, server_default="0"),
    sa.Column("ticks", sa.Integer, nullable=False, server_default="0"),
    sa.Column("appended", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Followed:
    repo: str
    cursor: str | None = None
    synced_at: datetime | None = None
    swept_to: int = 0
    ticks: int = 0
    appended: int = 0


class FollowState:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.backend = backend_of(engine)

    def get(self, repo: str) -> Followed:
        """The repository's row, or a fresh one (no cursor: every issue) when it was never followed."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(github_follows).where(github_follows.c.repo == repo)).first()
        if row is None:
            return Followed(repo)
        return Followed(row.repo, row.cursor, as_utc(row.synced_at), row.swept_to, row.ticks, row.appended)

    def advance(self, repo: str, cursor: str | None, *, appended: int) -> None:
        """Everything GitHub listed as updated before ``cursor`` (plus the overlap) is in the log."""
        self._upsert(repo, {"cursor": cursor}, appended=appended, ticks=0)

    def finish(self, repo: str, *, synced_at: datetime, swept_to: int, appended: int) -> None:
        """A tick that began at ``synced_at`` finished: count it, keep where its sweep stopped."""
        self._upsert(repo, {"synced_at": synced_at, "swept_to": swept_to}, appended=appended, ticks=1)

    def _upsert(self, repo: str, values: dict, *, appended: int, ticks: int) -> None:
        now = utcnow()
        c = github_follows.c
        statement = (self.backend.upsert(github_follows, ["repo"], {
            **values, "updated_at": now, "ticks": c.ticks + ticks, "appended": c.appended + appended})
            .values(repo=repo, updated_at=now, ticks=ticks, appended=appended, **values))
        with self.engine.begin() as conn:
            conn.execute(statement)
