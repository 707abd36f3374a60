"""The query side's commands: ``wcml predictions`` and ``wcml compare``.

``predictions`` runs the API's queries on the command line, as an aligned table or JSON lines: same
filter names, same parsing, same one-line errors; the next page's cursor goes to stderr so stdout
stays pipeable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from services.api import queries
from services.api.filters import FilterError, Filters
from shared.errors import UserError

FILTERS = ("repo", "issue", "task", "model", "label", "min_confidence", "max_confidence", "since", "until",
           "replay")
COLUMNS = (("id", ">"), ("predicted", "<"), ("issue", "<"), ("task", "<"), ("label", "<"),
           ("confidence", ">"), ("model", "<"), ("replay", "<"))


class QueryError(UserError):
    """A filter, page size or cursor given on the command line is not usable."""


def _cells(p: dict[str, Any]) -> tuple[str, ...]:
    return (str(p["id"]), p["predicted_at"][:19].replace("T", " "), f"{p['repo']}#{p['number']}", p["task"],
            p["label"], f"{p['confidence']:.2f}", p["model_version"], p["replay_id"] or "")


def table(items: list[dict[str, Any]]) -> str:
    rows = [tuple(name for name, _ in COLUMNS), *(_cells(p) for p in items)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    aligned = (("  ".join(f"{cell:{align}{width}}"
                          for cell, (_, align), width in zip(row, COLUMNS, widths, strict=True))).rstrip()
               for row in rows)
    return "\n".join(aligned)


def _unreachable(engine: Engine, exc: OperationalError) -> QueryError:
    reason = (str(exc.orig or exc).strip().splitlines() or ["?"])[0]
    return QueryError(f"cannot query {engine.url.render_as_string(hide_password=True)}: {reason}")


def _emit(items: list[dict[str, Any]], as_json: bool, out: TextIO) -> None:
    if as_json:
        for item in items:
            out.write(json.dumps(item, sort_keys=True) + "\n")
    elif items:
        out.write(table(items) + "\n")


def list_predictions(engine: Engine, values: Mapping[str, Any], cursor: str | None = None,
                     limit: int | str | None = None, *, as_json: bool = False, out: TextIO | None = None,
                     err: TextIO | None = None) -> int:
    """One page, newest first, like ``GET /api/v1/predictions``."""
    out, err = out or sys.stdout, err or sys.stderr  # at call time: a stream bound at import may be closed
    try:
        filters = Filters.parse({k: str(v) for k, v in values.items() if k in FILTERS and v is not None})
        page = queries.list_predictions(engine, filters, cursor, limit)
    except FilterError as exc:
        raise QueryError(str(exc)) from None
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None
    _emit(page.items, as_json, out)
    if not page.items:
        err.write("no predictions match\n")
    if page.next_cursor:
        err.write(f"more: --cursor {page.next_cursor}\n")
    return 0


def latest_for_issue(engine: Engine, repo: str | None, issue: int | str | None, *, as_json: bool = False,
                     out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The latest prediction per task of one issue, like ``GET /api/v1/issues/<owner>/<repo>/<number>``."""
    out, err = out or sys.stdout, err or sys.stderr
    if not repo or issue is None:
        raise QueryError("--latest needs --repo and --issue")
    try:
        filters = Filters.parse({"repo": repo, "issue": str(issue)})
    except FilterError as exc:
        raise QueryError(str(exc)) from None
    try:
        latest = queries.latest_for_issue(engine, filters.repo, filters.issue)
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None
    _emit([latest[task] for task in sorted(latest)], as_json, out)
    if not latest:
        err.write(f"no predictions for {filters.repo}#{filters.issue}\n")
        return 1
    return 0


def predictions(engine: Engine, values: Mapping[str, Any], *, latest: bool = False,
                as_json: bool = False) -> int:
    """``wcml predictions``: a page of the API's list, or with ``latest`` the issue's latest per task."""
    if latest:
        return latest_for_issue(engine, values.get("repo"), values.get("issue"), as_json=as_json)
    return list_predictions(engine, values, values.get("cursor"), values.get("limit"), as_json=as_json)


def compare(engine: Engine, run_id: str, *, task: str, model_a: str, model_b: str,
            truth: dict | None = None, as_json: bool = False, out: TextIO | None = None) -> int:
    """Two model versions on the events of one replay; with ``truth``, accuracy, precision and recall.
    A name the store has no predictions of stops it with one line listing those it has."""
    out = out or sys.stdout
    try:
        queries.check_comparison(task, model_a, model_b)
        queries.check_stored(engine, task, model_a, model_b)
    except FilterError as exc:
        raise QueryError(str(exc)) from None
    report = queries.compare_models(engine, run_id, task=task, model_a=model_a, model_b=model_b, truth=truth)
    if as_json:
        print(json.dumps(report, indent=1), file=out)
        return 0
    print(f"replay {run_id}, task {report['task']}: {report['pairs']} event(s) scored by both, "
          f"agreement {report['agreement_rate']}", file=out)
    for side in (report["model_a"], report["model_b"]):
        line = f"  {side['model_version']}: {side['count']} prediction(s), labels {side['labels']}"
        if side["truth"]:
            t = side["truth"]
            line += (f"; on {t['evaluated']} with known labels: accuracy {t['accuracy']}, "
                     f"macro precision {t['macro_precision']}, macro recall {t['macro_recall']}")
        print(line, file=out)
    return 0

