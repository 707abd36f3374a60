"""The record of every action, done or would-be: claimed before anything is sent, settled after.

A claim is an insert-or-ignore on (repository, issue, task, action, mode): the first prediction that
asks for an action owns it; every later one (a redelivery, a new model version) finds the row and
does nothing, unless the row is still ``pending`` (its process died between claiming and settling),
in which case it is handed out again and the caller looks at GitHub before sending.

``recorded`` and ``settle`` give back the records as they then stand, for the worker to report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.actions.policy import Intent
from services.actions.tables import actions
from shared.actions import KINDS, report
from shared.database import backend_of
from shared.messages import ActionRecord, Prediction
from shared.times import utcnow

IDENTITY = ("repo", "number", "task", "action", "mode")


@dataclass(frozen=True)
class Claim:
    """An action to carry out now (live mode), with the row that records it."""

    id: int
    repo: str
    number: int
    task: str
    kind: str
    target: str


class Ledger:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._claim = backend_of(engine).insert_ignoring(actions, IDENTITY)

    def claim(self, wanted: Sequence[tuple[Prediction, Intent]], *, live: bool) -> list[Claim]:
        """Record each wanted action not yet recorded (``pending`` when live, ``dry-run`` otherwise);
        return the live ones still pending, new or left by a process that died, in a stable order."""
        if not wanted:
            return []
        mode, now = _mode(live), utcnow()
        rows = {}
        for p, intent in wanted:  # the first prediction of the batch that asks for an action owns it
            key = (p.repo, p.number, p.task, intent.kind, mode)
            rows.setdefault(key, {
                "repo": p.repo, "number": p.number, "task": p.task, "action": intent.kind, "mode": mode,
                "target": intent.target, "state": "pending" if live else "dry-run",
                "reason": None if live else "dry run: nothing sent", "delivery_id": p.delivery_id,
                "model_version": p.model_version, "label": p.label, "confidence": float(p.confidence),
                "rule": intent.rule, "created_at": now, "updated_at": now})
        # One lock order for concurrent claimers; per issue, actions in the order they must happen.
        keys = sorted(rows, key=lambda k: (k[0], k[1], k[2], KINDS.index(k[3])))
        with self.engine.begin() as conn:
            conn.execute(self._claim, [rows[k] for k in keys])
            if not live:
                return []
            pending = conn.execute(sa.select(actions).where(_identity(keys), actions.c.state == "pending")
                                   .order_by(actions.c.id))
            return [Claim(r.id, r.repo, r.number, r.task, r.action, r.target) for r in pending]

    def recorded(self, wanted: Sequence[tuple[Prediction, Intent]], *, live: bool) -> list[ActionRecord]:
        """The records of the wanted actions (claimed or found) as they stand, in id order."""
        keys = {(p.repo, p.number, p.task, intent.kind, _mode(live)) for p, intent in wanted}
        if not keys:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(actions).where(_identity(sorted(keys))).order_by(actions.c.id))
            return [report(row) for row in rows]

    def settle(self, claim: Claim, state: str, reason: str) -> ActionRecord:
        """Record how a claimed action ended; its record as it now stands."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(actions).where(actions.c.id == claim.id)
                         .values(state=state, reason=reason[:1000], updated_at=utcnow()))
            return report(conn.execute(sa.select(actions).where(actions.c.id == claim.id)).one())


def _mode(live: bool) -> str:
    return "live" if live else "dry-run"


def _identity(keys: Sequence[tuple]) -> sa.ColumnElement[bool]:
    return sa.tuple_(*(actions.c[name] for name in IDENTITY)).in_(keys)
