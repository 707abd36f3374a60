"""The store's own table, ``latest_due`` (migration 0008), for SQLAlchemy Core; ``predictions`` is
``shared.predictions`` (the query API reads it too).

``tests/integration/test_schema.py`` checks that this definition and the migrated database agree.
"""

from __future__ import annotations

import sqlalchemy as sa

from shared.predictions import ROW_ID

metadata = sa.MetaData()

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

