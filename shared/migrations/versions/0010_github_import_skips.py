"""Issues a GitHub import could not read: ``github_import_skips``, one row per (repository, issue
number) with GitHub's answer (404: transferred or gone, 410: deleted, 451: unavailable for legal
reasons, or a 5xx that outlasted its retries), kept until a later import reads the issue whole;
owned by ingest (services/ingest/github/state.py).

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "github_import_skips",
        sa.Column("repo", sa.String(255), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tried_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("github_import_skips")
