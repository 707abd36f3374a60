"""Predictions: ``fills_live``, true for a replay's prediction made by the live model (a replay that
fills a gap): with the webhooks' own predictions it is the live record the views and latest
documents follow; and ``source``, where the triggering event came from (``live`` or ``import``).

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
        batch.add_column(sa.Column("fills_live", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="live"))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("source")
        batch.drop_column("fills_live")
