"""A GitHub follower's place per repository: ``github_follows`` (its cursor, when its last tick began,
where its deletion sweep stopped, counts), owned by ingest (services/ingest/github/follow_state.py);
and the API's read model of it, ``api_follows``, fed by the follower's reports (services/api/tables.py).

Revision ID: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "github_follows",
        sa.Column("repo", sa.String(255), primary_key=True),
        sa.Column("cursor", sa.String(32)),
        sa.Column("synced_at", sa.DateTime(timezone=True)),
        sa.Column("swept_to", sa.Integer, nullable=False, server_default="0"),
        sa.Column("ticks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("appended", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "api_follows",
        sa.Column("repo", sa.String(255), primary_key=True),
        sa.Column("cursor", sa.String(32)),
        sa.Column("synced_at", sa.DateTime(timezone=True)),
        sa.Column("ticks", sa.Integer, nullable=False),
        sa.Column("appended", sa.Integer, nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("api_follows")
    op.drop_table("github_follows")
