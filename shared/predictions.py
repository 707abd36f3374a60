"""Stored predictions, the one table the store writes and the query API reads: its SQLAlchemy
definition (migrations 0001, 0003, 0004, 0006, 0007, 0009 create it) and one row as JSON values, the
same shape in S3 documents and API items.

``tests/integration/test_schema.py`` checks that this definition and the migrated database agree.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.times import iso

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

IDENTITY = ("delivery_id", "task", "model_version")
"""The unique key a prediction is stored under (delivery id, task, model version): stored twice, one row."""

LIVE_RECORD = sa.or_(predictions.c.replay_id.is_(None), predictions.c.fills_live.is_(True))
"""The live record: a webhook's prediction, or a replay's made by the live model."""

FIELDS = ("id", "task", "model_version", "delivery_id", "position", "event", "action", "repo", "number",
          "label", "confidence", "probabilities", "predicted_at", "stored_at", "replay_id", "fills_live",
          "source", "blob_key", "probability", "precision")


def record(row: Any) -> dict[str, Any]:
    """A ``predictions`` row (SQLAlchemy Row or mapping) as a dict of JSON values."""
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    out = {name: data.get(name) for name in FIELDS}
    out["predicted_at"] = iso(out["predicted_at"])
    out["stored_at"] = iso(out["stored_at"])
    out["confidence"] = float(out["confidence"])
    out["fills_live"] = bool(out["fills_live"])
    for name in ("probability", "precision"):
        out[name] = None if out[name] is None else float(out[name])
    out["probabilities"] = {str(k): float(v) for k, v in (out["probabilities"] or {}).items()}
    return out
