"""The query API's read models and the replay source's report marks.

- ``api_replay_runs`` and ``api_actions``: the query API's own copies of replay runs and actions, fed
  by the replay source's and the actions service's reports (services/api/tables.py); filled here once
  from ``replay_runs`` and ``actions`` as they stand, so an API upgraded in place shows the history.
- ``replay_runs.revision`` (one more per change of a run) and ``replay_runs.reported`` (the highest
  revision the broker confirmed a report of), owned by ingest (services/ingest/replay_runs.py).

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

RUN_COLUMNS = ("id", "created_at", "created_by", "filters", "model_version", "tasks", "state", "total",
               "published", "last_position", "finished_at", "error")
ACTION_COLUMNS = ("id", "repo", "number", "task", "action", "mode", "target", "state", "reason",
                  "delivery_id", "model_version", "label", "confidence", "rule", "created_at", "updated_at")


def upgrade() -> None:
    with op.batch_alter_table("replay_runs") as batch:
        batch.add_column(sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("reported", sa.BigInteger, nullable=False, server_default="0"))
    op.create_table(
        "api_replay_runs",
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
    )
    op.create_index("ix_api_replay_runs_created_at", "api_replay_runs", ["created_at"])
    op.create_table(
        "api_actions",
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
    )
    op.create_index("ix_api_actions_state", "api_actions", ["state"])
    runs, actions = ", ".join(RUN_COLUMNS), ", ".join(ACTION_COLUMNS)
    op.execute(f"INSERT INTO api_replay_runs (revision, {runs}) SELECT 0, {runs} FROM replay_runs")
    op.execute(f"INSERT INTO api_actions (revision, {actions}) "
               f"SELECT CASE WHEN state = 'pending' THEN 0 ELSE 1 END, {actions} FROM actions")


def downgrade() -> None:
    op.drop_table("api_actions")
    op.drop_table("api_replay_runs")
    with op.batch_alter_table("replay_runs") as batch:
        batch.drop_column("reported")
        batch.drop_column("revision")
