"""The query API's own tables: read models of records other services own, fed by their reports, each
derived from its record's declaration (``shared.messages``; migration 0011 creates them).

- ``api_replay_runs``: replay runs, from the replay source's ``ReplayRun`` reports (and the API's own
  record of a run it was asked for, revision 0); the highest ``revision`` of each run is kept.
- ``api_actions``: actions on GitHub, from the actions service's ``ActionRecord`` reports, keyed by the
  action's id there (given with each report, not generated here); ``revision`` (``KeptAction``) is 0
  while the action is pending, 1 once it is settled.
- ``api_follows``: each followed repository's place, from the follower's ``FollowReport`` reports
  (migration 0013); the newest ``reported_at`` of each repository is kept.

The API alone writes and reads them (``run_view.py``, ``action_view.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from shared import records
from shared.messages import ActionRecord, FollowReport, ReplayRun


@dataclass(frozen=True, kw_only=True)
class KeptAction(ActionRecord):
    """An action as the API keeps it: the record's fields, and which of its reports it is."""

    revision: int = records.integer(minimum=0, maximum=1)  # shared.actions.revision


metadata = sa.MetaData()

api_replay_runs = records.table(
    "api_replay_runs", metadata, ReplayRun,
    sa.Index("ix_api_replay_runs_created_at", "created_at"),
)

api_actions = records.table(
    "api_actions", metadata, KeptAction,
    sa.Index("ix_api_actions_state", "state"),
    generated_ids=False,
)

api_follows = records.table("api_follows", metadata, FollowReport)
