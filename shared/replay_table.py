"""The ``replay_runs`` table: the one control table two services share.

The replay source (ingest) records and advances runs in it; the query API (store) reads their
progress and queues new runs (state ``requested``). Schema: migration 0002.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
replay_runs = sa.Table(
    "replay_runs", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("filters", sa.JSON, nullable=False),
    sa.Column("model_version", sa.String(64)),
    sa.Column("tasks", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("published", sa.Integer, nullable=False),
    sa.Column("last_position", sa.BigInteger, nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
)
