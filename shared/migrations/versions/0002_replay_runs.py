"""Replay runs: each replay of a slice of the event log, with its filters, progress and state.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replay_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("filters", sa.JSON, nullable=False),
        sa.Column("model_version", sa.String(64)),
        sa.Column("tasks", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("published", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_position", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_replay_runs_created_at", "replay_runs", ["created_at"])
    op.create_index("ix_replay_runs_state", "replay_runs", ["state"])


def downgrade() -> None:
    op.drop_table("replay_runs")
