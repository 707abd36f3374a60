"""History documents are batched (one JSON-lines object per batch the store consumed): an index on
``predictions.blob_key``, so the rows of one object are found at once (a redelivery or
``wcml store repair`` rewrites a lost object from them).

Revision ID: 0006
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_predictions_blob_key", "predictions", ["blob_key"])


def downgrade() -> None:
    op.drop_index("ix_predictions_blob_key", "predictions")
