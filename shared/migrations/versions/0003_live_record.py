"""Predictions: ``live_record``, true for a webhook's prediction and for a replay's made by the live
model (a replay that fills a gap); the live views and latest documents follow it, not ``replay_id``.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("live_record", sa.Boolean, nullable=False, server_default=sa.true()))
    op.execute("UPDATE predictions SET live_record = false WHERE replay_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("live_record")
