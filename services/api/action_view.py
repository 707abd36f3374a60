"""Actions on GitHub as the API and the dashboard show them: the API's read model ``api_actions``.

Fed by the actions service's ``ActionRecord`` reports (queue ``actions.api``, ``handle``), keyed by
the action's id there. A settled record is kept over a pending one (``shared.actions.revision``): a
report that arrives late or twice never rolls an action back. Listed with the actions service's own
query (``shared.actions.list_actions``), so filters, pages and errors are the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.engine import Engine

from services.api.reports import keep_newest, readable
from services.api.tables import api_actions as t
from shared.actions import Page, list_actions, revision, table_row
from shared.broker.port import Delivery, Rejection
from shared.database import once_per_backend
from shared.messages import ActionRecord

COLUMNS = tuple(c.name for c in t.columns if c.name != "id")


@once_per_backend
def _keep(backend):
    return backend.upsert(t, ["id"], updating=COLUMNS, newer="revision")


def _row(record: ActionRecord) -> dict:
    return {**table_row(record), "revision": revision(record.state)}


def keep(engine: Engine, records: Iterable[ActionRecord]) -> None:
    """Each action's newest record: of these, and of what the table holds."""
    keep_newest(engine, _keep, records, key=lambda r: r.id, order=lambda r: revision(r.state), row=_row)


def handle(engine: Engine, deliveries: list[Delivery]) -> list[Rejection]:
    """The consumer of ``actions.api``: keep every report; dead-letter one that is not an action."""
    records, rejections = readable(deliveries, ActionRecord, _row)
    keep(engine, records)
    return rejections


def list_recent(engine: Engine, params: Mapping[str, str | None]) -> Page:
    """``GET /api/v1/actions``: newest first, with the listing's filters, cursor and limit."""
    return list_actions(engine, t, params)
