"""``latest_due``: the issues whose latest document is to be (re)written, one row per stored live
prediction, added in the transaction that stores it and removed by the store's latest-documents
follower once the document is written (``services/store/latest.py``). Latest documents left the
consumer's path: one file per issue written inside it was nearly half the store's time in a replay.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "latest_due",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("repo", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("latest_due")
