"""The actions service's table: ``actions``, one row per (repository, issue, task, action, mode),
derived from ``ActionRecord``'s declaration (``shared.messages``; ``shared.actions`` says what its
fields and states mean; migration 0005 creates it). The ledger alone writes it."""

from __future__ import annotations

import sqlalchemy as sa

from shared import records
from shared.messages import ActionRecord

metadata = sa.MetaData()
actions = records.table(
    "actions", metadata, ActionRecord,
    sa.UniqueConstraint("repo", "number", "task", "action", "mode", name="uq_actions_identity"),
    sa.Index("ix_actions_created_at", "created_at"),
    sa.Index("ix_actions_state", "state"),
)
