"""Imported events' identity: ``event_log.event_key``, the same whichever of GitHub's APIs read the
event (services/ingest/github/history.py says what it is made of), indexed where set; every imported
event already logged is given its key here, from its payload, so importing again (through either
API) adds nothing twice. Webhook deliveries have none.

The key is computed here as history.py computes it (a migration is a snapshot: it does not import
the code of its day).

Revision ID: 0012
"""

import hashlib
import json
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BATCH = 1000


def _subject(event: str, payload: dict) -> str:
    if event in ("labeled", "unlabeled"):
        return str((payload.get("label") or {}).get("name") or "")
    if event in ("milestoned", "demilestoned"):
        return str((payload.get("milestone") or {}).get("title") or "")
    if event in ("assigned", "unassigned"):
        return str((payload.get("assignee") or {}).get("login") or "")
    if event == "renamed":
        before = ((payload.get("changes") or {}).get("title") or {}).get("from")
        return f"{before or ''}\x00{(payload.get('issue') or {}).get('title') or ''}"
    return ""


def key_of(payload: dict, seen: Counter) -> str | None:
    imported = payload.get("imported") or {}
    issue_id = (payload.get("issue") or {}).get("id")
    event = imported.get("event")
    if issue_id is None or not event:
        return None
    if event == "opened":
        return f"opened-{issue_id}"
    sender = payload.get("sender")
    login = sender.get("login") if isinstance(sender, dict) else None
    fields = "\x1f".join((str(issue_id), event, _subject(event, payload), str(login or ""),
                          imported.get("created_at") or ""))
    ordinal = seen[fields]
    seen[fields] += 1
    return hashlib.sha256(f"{fields}\x1f{ordinal}".encode()).hexdigest()[:40]


def upgrade() -> None:
    op.add_column("event_log", sa.Column("event_key", sa.String(64), nullable=True))
    op.create_index("ix_event_log_event_key", "event_log", ["event_key"],
                    postgresql_where=sa.text("event_key IS NOT NULL"),
                    sqlite_where=sa.text("event_key IS NOT NULL"))
    conn = op.get_bind()
    log = sa.table("event_log", sa.column("position", sa.BigInteger), sa.column("source", sa.String),
                   sa.column("payload", sa.Text), sa.column("event_key", sa.String))
    seen: dict[object, Counter] = {}  # per issue id: the key fields met so far, in log order
    after = 0
    while True:
        rows = conn.execute(sa.select(log.c.position, log.c.payload)
                            .where(log.c.source == "import", log.c.position > after)
                            .order_by(log.c.position).limit(BATCH)).all()
        if not rows:
            break
        updates = []
        for position, text in rows:
            try:
                payload = json.loads(text)
            except (TypeError, ValueError):
                continue
            issue_id = (payload.get("issue") or {}).get("id") if isinstance(payload, dict) else None
            key = key_of(payload, seen.setdefault(issue_id, Counter())) if isinstance(payload, dict) else None
            if key is not None:
                updates.append({"at": position, "key": key})
        if updates:
            conn.execute(log.update().where(log.c.position == sa.bindparam("at"))
                         .values(event_key=sa.bindparam("key")), updates)
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_event_log_event_key", table_name="event_log")
    op.drop_column("event_log", "event_key")
