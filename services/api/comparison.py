"""Two model versions of one task, side by side: how often they agree, and (given the truth) who is right.

Predictions are paired on (delivery id, task): the same event scored by both models, which is
what a replay with a new model produces beside the live row of the old one. With a replay id,
the events are those that replay scored for the task (either model's row may be live or
replayed); without one, every event both models scored. A comparison names a task and two versions
that have predictions (``check_stored``), else it is a 400 listing those that have (``shared.known``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.api.filters import FilterError, check_name
from shared.known import unknown
from shared.predictions import predictions as t

Truth = Mapping[Hashable, str]
"""Known labels keyed by delivery id or by (repo, issue number); a delivery id wins over its issue."""


def _required(name: str, value: str | None) -> str:
    if not value:
        raise FilterError(f"{name} is required")
    return check_name(name, value)


def _scope(table, task: str, replay_id: str | None) -> list[sa.ColumnElement[bool]]:
    clauses = [table.c.task == task]
    if replay_id is not None:
        scored = sa.select(t.c.delivery_id).where(t.c.replay_id == replay_id, t.c.task == task)
        clauses.append(table.c.delivery_id.in_(scored))
    return clauses


def check_comparison(task: str, model_a: str, model_b: str) -> tuple[str, str, str]:
    """The three names, or ``FilterError`` for a missing or unusable one, or the same model twice."""
    task, model_a, model_b = (_required(n, v) for n, v in
                              (("task", task), ("model_a", model_a), ("model_b", model_b)))
    if model_a == model_b:
        raise FilterError("model_a and model_b are the same model")
    return task, model_a, model_b


def stored_tasks(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(t.c.task).distinct()).scalars())


def stored_versions(engine: Engine, task: str) -> list[str]:
    """The model versions that have predictions of ``task``."""
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(t.c.model_version).where(t.c.task == task).distinct()).scalars())


def check_stored(engine: Engine, task: str, model_a: str, model_b: str) -> None:
    """``FilterError`` naming the first of the task, model_a, model_b that has no predictions, with the
    ones that have (looked up only then: the check itself is an indexed probe per name)."""
    def some(*where) -> bool:
        with engine.connect() as conn:
            return conn.execute(sa.select(t.c.id).where(*where).limit(1)).first() is not None

    where = " (with predictions)"
    if not some(t.c.task == task):
        raise FilterError(str(unknown("task", task, stored_tasks(engine), where=where)))
    for name, model in (("model_a", model_a), ("model_b", model_b)):
        if not some(t.c.model_version == model, t.c.task == task):
            raise FilterError(str(unknown(name, model, stored_versions(engine, task), of=f" for task {task}",
                                          where=where)))


def compare_models(engine: Engine, replay_id: str | None = None, *, task: str, model_a: str, model_b: str,
                   truth: Truth | None = None) -> dict[str, Any]:
    task, model_a, model_b = check_comparison(task, model_a, model_b)
    scope = _scope(t, task, replay_id)
    a, b = t.alias("a"), t.alias("b")
    pairs = (sa.select(a.c.label.label("label_a"), b.c.label.label("label_b"), sa.func.count().label("n"))
             .select_from(a.join(b, sa.and_(a.c.delivery_id == b.c.delivery_id, a.c.task == b.c.task)))
             .where(*_scope(a, task, replay_id), a.c.model_version == model_a, b.c.model_version == model_b)
             .group_by(a.c.label, b.c.label).order_by(a.c.label, b.c.label))
    labels = (sa.select(t.c.model_version, t.c.label, sa.func.count().label("n"))
              .where(*scope, t.c.model_version.in_((model_a, model_b)))
              .group_by(t.c.model_version, t.c.label))
    with engine.connect() as conn:
        pair_labels = [{"label_a": p.label_a, "label_b": p.label_b, "count": p.n}
                       for p in conn.execute(pairs)]
        per_model: dict[str, dict[str, int]] = {model_a: {}, model_b: {}}
        for row in conn.execute(labels):
            per_model[row.model_version][row.label] = row.n
        scores = {m: _truth_scores(conn, scope, m, truth) if truth is not None else None
                  for m in (model_a, model_b)}
    total = sum(p["count"] for p in pair_labels)
    agree = sum(p["count"] for p in pair_labels if p["label_a"] == p["label_b"])

    def side(model: str) -> dict[str, Any]:
        return {"model_version": model, "count": sum(per_model[model].values()),
                "labels": dict(sorted(per_model[model].items())), "truth": scores[model]}

    return {"task": task, "replay_id": replay_id, "model_a": side(model_a), "model_b": side(model_b),
            "pairs": total, "agreements": agree, "agreement_rate": round(agree / total, 4) if total else None,
            "pair_labels": pair_labels}


def _truth_scores(conn, scope, model: str, truth: Truth) -> dict[str, Any]:
    """Accuracy, and precision and recall per label, over this model's predictions that have a truth."""
    query = (sa.select(t.c.delivery_id, t.c.repo, t.c.number, t.c.label)
             .where(*scope, t.c.model_version == model))
    hits, predicted, actual = Counter(), Counter(), Counter()
    for row in conn.execute(query):
        known = truth.get(row.delivery_id, truth.get((row.repo, row.number)))
        if known is None:
            continue
        predicted[row.label] += 1
        actual[known] += 1
        hits[known] += row.label == known
    evaluated = sum(actual.values())
    per_label = {label: {"precision": round(hits[label] / predicted[label], 4) if predicted[label] else None,
                         "recall": round(hits[label] / actual[label], 4) if actual[label] else None,
                         "support": actual[label]}
                 for label in sorted(set(predicted) | set(actual))}

    def macro(name: str) -> float | None:
        values = [v[name] for v in per_label.values() if v[name] is not None]
        return round(sum(values) / len(values), 4) if values else None

    return {"evaluated": evaluated,
            "accuracy": round(sum(hits.values()) / evaluated, 4) if evaluated else None,
            "macro_precision": macro("precision"), "macro_recall": macro("recall"), "labels": per_label}
