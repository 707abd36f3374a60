"""The actions service's table: ``actions``, one row per (repository, issue, task, action, mode)
(``shared.actions`` says what its fields and states mean). The ledger alone writes it."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
actions = sa.Table(
    "actions", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("task", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # one of KINDS
    sa.Column("mode", sa.String(16), nullable=False),  # one of MODES
    sa.Column("target", sa.Text, nullable=False),  # labels (comma-separated), milestone title, "" otherwise
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("delivery_id", sa.String(255), nullable=False),  # the prediction that asked for it
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("rule", sa.Integer, nullable=False),  # the policy rule's index (from 1)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("repo", "number", "task", "action", "mode", name="uq_actions_identity"),
    sa.Index("ix_actions_created_at", "created_at"),
    sa.Index("ix_actions_state", "state"),
)
