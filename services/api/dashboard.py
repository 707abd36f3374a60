"""The HTML dashboard at ``/``: recent predictions, label distribution, models, replay runs, actions,
and the GitHub followers' lag.

Seen only by a caller with the ``read`` scope: a browser logs in once with an API key at ``/login``
(``dashboard_access``) and is then known by its session cookie; a key in ``?key=`` would end up in
access logs and browser history, so there is none. It shows only what the API would (predictions, no
secrets). Its one form that changes something, the logout, carries the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from flask import render_template
from sqlalchemy.engine import Engine

from services.api import action_view, follow_view, queries
from services.api.filters import FilterError, Filters

DAYS = 14
RECENT = 50
ALL_REPLAYS = "all"  # the form's "live and replayed"; the dashboard shows live predictions by default
FORM_FIELDS = ("repo", "issue", "task", "label", "model", "min_confidence", "max_confidence", "since",
               "until", "replay")
RUNS = 10
ACTIONS = 20
PALETTE = ("#3b82f6", "#ef4444", "#10b981", "#f59e0b", "#8b5cf6", "#ec4899", "#14b8a6", "#64748b")


def _filter_args(args: Mapping[str, str]) -> dict[str, str]:
    values = {k: args[k] for k in args if k != "cursor"}
    values.setdefault("replay", "none")
    if values["replay"] == ALL_REPLAYS:
        del values["replay"]
    return values


def _distribution(counts: list[dict], now: datetime) -> list[dict]:
    """Per task: one row per day (newest first) with each label's share as CSS widths."""
    today = now.astimezone(UTC).date()
    days = [(today - timedelta(days=i)).isoformat() for i in range(DAYS)]
    charts = []
    for task in sorted({c["task"] for c in counts}):
        rows = [c for c in counts if c["task"] == task]
        labels = sorted({c["label"] for c in rows})
        color = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
        per_day = {day: {c["label"]: c["count"] for c in rows if c["day"] == day} for day in days}
        peak = max(sum(v.values()) for v in per_day.values()) or 1
        charts.append({
            "task": task,
            "legend": [(label, color[label]) for label in labels],
            "days": [{"day": day, "total": sum(per_day[day].values()),
                      "width": round(100 * sum(per_day[day].values()) / peak, 2),
                      "segments": [{"label": label, "count": n, "color": color[label],
                                    "width": round(100 * n / sum(per_day[day].values()), 2)}
                                   for label, n in sorted(per_day[day].items())]}
                     for day in days],
        })
    return charts


def render(engine: Engine, args: Mapping[str, str], now: datetime | None = None,
           csrf: str | None = None) -> tuple[str, int]:
    """The page and its status: 400 (with the reason on the page) for a bad filter. ``csrf``: the
    session's token, for the logout form (None: no session, as with a Bearer header, no form)."""
    now = now or datetime.now(UTC)
    form = {name: args.get(name, "") for name in FORM_FIELDS}
    form["replay"] = form["replay"] or "none"
    error, page, charts = None, None, []
    try:
        filters = Filters.parse(_filter_args(args))
        page = queries.list_predictions(engine, filters, args.get("cursor"), RECENT)
        charts = _distribution(queries.label_counts(engine, filters, days=DAYS, now=now), now)
    except FilterError as exc:
        error = str(exc)
    older = None
    if page is not None and page.next_cursor:
        older = "?" + urlencode({**{k: args[k] for k in args if k != "cursor"}, "cursor": page.next_cursor})
    api = "/api/v1/predictions?" + urlencode({k: v for k, v in _filter_args(args).items() if v.strip()})
    html = render_template("store_dashboard.html", form=form, error=error, charts=charts, days=DAYS,
                           items=page.items if page else [], older=older, paged="cursor" in args,
                           models=queries.model_versions(engine), runs=queries.list_runs(engine, RUNS),
                           actions=action_view.list_recent(engine, {"limit": str(ACTIONS)})[0],
                           follows=follow_view.list_follows(engine, now),
                           api=api.rstrip("?"), generated=now.strftime("%Y-%m-%d %H:%M UTC"), csrf=csrf)
    return html, 400 if error else 200
