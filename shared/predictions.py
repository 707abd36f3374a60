"""Stored predictions, the one table the store writes and the query API reads: the stored extension
of ``shared.messages.Prediction`` (the columns only a row has), the table derived from it (migrations
0001, 0003, 0004, 0006, 0007, 0009 create it) and one row as JSON values, the same shape in S3
documents and API items (``record``; its OpenAPI schema is ``records.schema_of(StoredPrediction)``).

A field added to ``Prediction`` is a column, a JSON key and a schema property with no edit here; only
its migration is written by hand. ``tests/integration/test_schema.py`` checks that this table and the
migrated database agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shared import records
from shared.messages import Prediction

ROW_ID = records.ROW_ID  # as in 0001: SQLite autoincrements INTEGER


@dataclass(frozen=True, kw_only=True)
class StoredPrediction(Prediction):
    """A prediction as the store keeps it: the message's fields, and these the store adds."""

    id: int = records.row_id(description="Row id; newer rows have larger ids.")
    stored_at: str = records.moment()
    blob_key: str | None = records.text(512, default=None, description="Key of the history document.")


metadata = sa.MetaData()

predictions = records.table(
    "predictions",
    metadata,
    StoredPrediction,
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

FIELDS = records.names_of(StoredPrediction)
"""A stored prediction's columns, the keys of its JSON record."""

_record = records.json_of(StoredPrediction)


def record(row: Any) -> dict[str, Any]:
    """A ``predictions`` row (SQLAlchemy Row or mapping) as a dict of JSON values."""
    return _record(row)
