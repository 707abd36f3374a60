"""Event log (ingest) and predictions (store).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("position", POSITION, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), nullable=False, unique=True),
        sa.Column("hook_id", sa.String(32)),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64)),
        sa.Column("repo", sa.String(255)),
        sa.Column("issue_number", sa.Integer),
        sa.Column("sender", sa.String(255)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_event_log_unpublished", "event_log", ["position"],
                    postgresql_where=sa.text("published_at IS NULL"),
                    sqlite_where=sa.text("published_at IS NULL"))
    op.create_index("ix_event_log_repo_issue", "event_log", ["repo", "issue_number"])
    op.create_index("ix_event_log_received_at", "event_log", ["received_at"])

    op.create_table(
        "predictions",
        sa.Column("id", POSITION, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String(64)),
        sa.Column("action", sa.String(64)),
        sa.Column("repo", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("probabilities", sa.JSON, nullable=False),
        sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replay_id", sa.String(64)),
        sa.Column("blob_key", sa.String(512)),
        sa.UniqueConstraint("delivery_id", "task", "model_version", name="uq_prediction_identity"),
    )
    op.create_index("ix_predictions_issue", "predictions", ["repo", "number", "task", "id"])
    op.create_index("ix_predictions_task_label", "predictions", ["task", "label", "id"])
    op.create_index("ix_predictions_predicted_at", "predictions", ["predicted_at"])
    op.create_index("ix_predictions_replay", "predictions", ["replay_id", "id"])
    op.create_index("ix_predictions_model", "predictions", ["model_version", "id"])


def downgrade() -> None:
    op.drop_table("predictions")
    op.drop_table("event_log")
