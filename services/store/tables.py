"""The store's tables, ``predictions`` (migration 0001) and ``latest_due`` (0008), for SQLAlchemy Core.

The migrations create the schema; ``tests/integration/test_schema.py`` checks that this definition
and the migrated database agree. ``replay_runs`` (``shared.replays``) the store only reads.
"""

from __future__ import annotations

import sqlalchemy as sa

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # as in 0001: SQLite autoincrements INTEGER

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
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
    # A replay's prediction made by the live model: it fills a gap, so it is part of the live record.
    sa.Column("fills_live", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("source", sa.String(16), nullable=False, server_default="live"),  # live | import
    sa.Column("probability", sa.Float),  # calibrated (0007); null from a bundle without calibration
    sa.Column("precision", sa.Float),  # measured precision at that confidence (0007)
    sa.UniqueConstraint("delivery_id", "task", "model_version", name="uq_prediction_identity"),
    sa.Index("ix_predictions_issue_position", "repo", "number", "task", "position", "id"),  # 0009
    sa.Index("ix_predictions_task_label", "task", "label", "id"),
    sa.Index("ix_predictions_predicted_at", "predicted_at"),
    sa.Index("ix_predictions_replay", "replay_id", "id"),
    sa.Index("ix_predictions_model", "model_version", "id"),
    sa.Index("ix_predictions_blob_key", "blob_key"),  # the rows of one history object (0006)
)

# Issues whose latest document is to be written (0008): a row per stored live prediction, added in
# its transaction, removed once the document is written (services/store/latest.py).
latest_due = sa.Table(
    "latest_due",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("task", sa.String(64), nullable=False),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
)

IDENTITY = ("delivery_id", "task", "model_version")

LIVE_RECORD = sa.or_(predictions.c.replay_id.is_(None), predictions.c.fills_live.is_(True))
"""The live record: a webhook's prediction, or a replay's made by the live model."""
"""The unique key a prediction is stored under (delivery id, task, model version): stored twice, one row."""

