"""Actions on GitHub: the record the actions service keeps and the query API shows, and its listing.

The actions service alone keeps the record (its ``actions`` table, ``services/actions/tables.py``)
and reports every change of it as an ``ActionRecord`` message; the query API shows the reports it
keeps (its read model). Both list theirs with ``list_actions``. One record per
(repository, issue, task, action, mode): an action is one of ``label``, ``milestone``, ``comment``,
``close``, so a task labels an issue at most once, whatever later predictions or model versions say,
and a dry run's record does not stand in the way of the live mode once it is switched on.

States:
- ``dry-run``: what the live mode would have done (nothing was sent);
- ``pending``: claimed, about to be sent; a process that dies here leaves it, and whoever meets it
  next looks at the issue on GitHub before sending (so a label already there is not sent again);
- ``done``: sent, or found already done on GitHub (``reason`` says which);
- ``skipped``: not sent, on purpose (a person removed that label, reopened the issue…);
- ``failed``: GitHub refused it for good (permission, missing milestone); ``reason`` is its answer.

A record changes at most once after it is made: from ``pending`` to how it was settled
(``revision``: 0, then 1); every other state is final from the start.

The record's fields, their columns, JSON and schema are declared once (``ActionRecord``,
``shared.records``); the kinds, states and modes below are its declaration's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from shared import records
from shared.errors import UserError
from shared.messages import ActionRecord

KINDS = records.spec_of(ActionRecord, "action").enum
STATES = records.spec_of(ActionRecord, "state").enum
MODES = records.spec_of(ActionRecord, "mode").enum


def revision(state: str) -> int:
    """Which of an action's records is newer: a settled one (1) over a pending one (0)."""
    return 0 if state == "pending" else 1


action_record = records.json_of(ActionRecord)
"""One action's row as the API, the dashboard and ``wcml actions list`` show it: the fields of its
``ActionRecord`` message (``report``), times ISO 8601 with ``Z``; its schema is
``records.schema_of(ActionRecord)``."""

table_row = records.row_of(ActionRecord, times=True)
"""An action as its tables take it, times as aware datetimes (``TimeFormatError`` where one does not
read)."""


def report(row: Any) -> ActionRecord:
    """An action's row as the message that reports it (its times as shown: ISO 8601 with ``Z``)."""
    return ActionRecord(**action_record(row))


# -- reading: the one query behind GET /api/v1/actions, the dashboard panel and `wcml actions list` ----

FILTERS = {"repo": "owner/name", "issue": "issue number", "task": "task name",
           "action": "one of " + ", ".join(KINDS), "state": "one of " + ", ".join(STATES),
           "mode": "dry-run or live"}
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
TEXT_LENGTH = {name: records.spec_of(ActionRecord, name).max_length for name in ("repo", "task")}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DIGITS = re.compile(r"[0-9]{1,19}")


class ActionQueryError(UserError, ValueError):
    """A filter of the actions listing that cannot be answered; the message is one line."""


Page = tuple[list[dict[str, Any]], str | None]  # items, next_cursor


def list_actions(engine: sa.Engine, actions: sa.Table, params: Mapping[str, str | None]) -> Page:
    """Newest first, from ``actions`` (the actions service's table, or the API's read model: the same
    columns); ``params`` as strings (query string or command line): the FILTERS, ``cursor``
    (from the previous page's ``next_cursor``) and ``limit`` (1-500, default 50). Empty is absent."""
    query = sa.select(actions).order_by(actions.c.id.desc())
    for name, value in params.items():
        if value is None or value == "":
            continue
        value = str(value)
        if name == "issue":
            query = query.where(actions.c.number == _positive(name, value, 2**31 - 1))
        elif name == "cursor":
            query = query.where(actions.c.id < _positive(name, value, 2**62))
        elif name in ("action", "state", "mode"):
            if value not in {"action": KINDS, "state": STATES, "mode": MODES}[name]:
                raise ActionQueryError(f"{name} must be {FILTERS[name]}")
            query = query.where(actions.c[name] == value)
        elif name in FILTERS:
            if len(value) > TEXT_LENGTH[name] or CONTROL.search(value):
                raise ActionQueryError(f"{name} must be at most {TEXT_LENGTH[name]} printable characters")
            query = query.where(actions.c[name] == value)
        elif name != "limit":
            raise ActionQueryError(f"unknown parameter {name[:40]!r}; actions take {', '.join(FILTERS)}, "
                                   "cursor, limit")
    limit = _positive("limit", str(params.get("limit") or DEFAULT_LIMIT), MAX_LIMIT)
    with engine.connect() as conn:
        rows = list(conn.execute(query.limit(limit + 1)))
    items = [action_record(row) for row in rows[:limit]]
    return items, (str(items[-1]["id"]) if len(rows) > limit else None)


def _positive(name: str, value: str, largest: int) -> int:
    if not DIGITS.fullmatch(value) or not 1 <= int(value) <= largest:
        raise ActionQueryError(f"{name} must be an integer from 1 to {largest}")
    return int(value)
