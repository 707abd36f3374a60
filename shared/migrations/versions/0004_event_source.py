"""Imported history: ``event_log.source`` ("live" for a webhook, "import" for GitHub history read
through the REST API) and the import's own state, ``github_imports`` (the resume cursor per
repository) and ``github_validators`` (ETag / Last-Modified per URL read, for conditional requests),
both owned by ingest (services/ingest/github/state.py).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_log") as batch:
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="live"))
    op.create_table(
        "github_imports",
        sa.Column("repo", sa.String(255), primary_key=True),
        sa.Column("since", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("next_url", sa.Text),
        sa.Column("pages", sa.Integer, nullable=False, server_default="0"),
        sa.Column("issues", sa.Integer, nullable=False, server_default="0"),
        sa.Column("events", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "github_validators",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("etag", sa.String(255)),
        sa.Column("last_modified", sa.String(64)),
        sa.Column("next_url", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("github_validators")
    op.drop_table("github_imports")
    with op.batch_alter_table("event_log") as batch:
        batch.drop_column("source")
