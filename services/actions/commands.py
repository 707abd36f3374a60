"""``wcml actions list``: the actions service's own record (its ``actions`` table), newest first, a
line each or JSON lines; the same filters, pages and one-line errors as ``GET /api/v1/actions``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

from sqlalchemy.engine import Engine

from services.actions.tables import actions
from shared.actions import FILTERS, list_actions


def list_recorded(engine: Engine, params: Mapping[str, str | None], *, as_json: bool) -> int:
    wanted = {k: params.get(k) for k in (*FILTERS, "cursor", "limit")}
    items, next_cursor = list_actions(engine, actions, wanted)
    for item in items:
        print(json.dumps(item) if as_json else
              f"{item['created_at']}  {item['mode']:7}  {item['state']:7}  {item['repo']}#{item['number']}  "
              f"{item['task']} {item['action']} {item['target'][:40]!r}  ({item['label']} "
              f"{item['confidence']:.2f}): {item['reason'] or ''}")
    if next_cursor:
        print(f"more: --cursor {next_cursor}", file=sys.stderr)
    return 0
