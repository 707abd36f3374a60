"""The query API's own tables: read models of records other services own, fed by their reports.

- ``api_replay_runs``: replay runs, from the replay source's ``ReplayRun`` reports (and the API's own
  record of a run it was asked for, revision 0); the highest ``revision`` of each run is kept.
- ``api_actions``: actions on GitHub, from the actions service's ``ActionRecord`` reports, keyed by the
  action's id there; ``revision`` is 0 while the action is pending, 1 once it is settled.

The API alone writes and reads them (``run_view.py``, ``action_view.py``).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

api_replay_runs = sa.Table(
    "api_replay_runs", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
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
    sa.Index("ix_api_replay_runs_created_at", "created_at"),
)

api_actions = sa.Table(
    "api_actions", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("task", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("delivery_id", sa.String(255), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("rule", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_api_actions_state", "state"),
)
