"""Each issue's rows indexed in the order its latest document is chosen: ``(repo, number, task,
position, id)`` in place of ``(repo, number, task, id)``.

The latest-documents follower asks, per issue, for the row with the highest position, then id
(``services/store/latest.py``). With the id last, PostgreSQL had to sort each issue's rows, and a
planner without statistics (a new table, or autovacuum off) costed that sort against a scan of every
row of the task by ``ix_predictions_task_label`` and chose the scan: 13 ms for 60 issues at 2,000
rows, growing with the table, the follower's share of a 2-core machine at 100 webhooks/s. An index
in the query's order ends each lookup at its first entry (0.17 ms for the same 60), whatever the
statistics. Queries by issue and id (the API's issue filter) sort an issue's few rows instead.

Revision ID: 0009
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_predictions_issue_position", "predictions",
                    ["repo", "number", "task", "position", "id"])
    op.drop_index("ix_predictions_issue", "predictions")


def downgrade() -> None:
    op.create_index("ix_predictions_issue", "predictions", ["repo", "number", "task", "id"])
    op.drop_index("ix_predictions_issue_position", "predictions")
