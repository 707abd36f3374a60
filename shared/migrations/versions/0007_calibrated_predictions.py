"""Predictions: ``probability``, the model's calibrated probability of its label, and ``precision``,
the precision its training measured among predictions at least that confident (both null from a
bundle without calibration): what an actions policy's ``min_precision`` reads.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("probability", sa.Float))
        batch.add_column(sa.Column("precision", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("precision")
        batch.drop_column("probability")
