"""Calibrated probability, and the precision a confidence stands for, kept in a bundle's manifest.

A model's raw probability is not a promise: a balanced logistic regression over sparse n-grams is
timid on the repositories it was trained on and a different model again on one it never saw. So
training measures it. On predictions the model made for issues it was not trained on, it fits

- a temperature (``softmax(log p / T)``: the labels a model picks never change, only how sure it says
  it is), the one that best fits those predictions (log-loss), and
- a precision table per label: among those predictions of the label whose calibrated confidence is
  at least t, the share that was right, for each t of ``STEPS`` (the bugbug-style threshold table, on
  calibrated values; per label, since a policy acts on one label: a confident "question" may be
  right less often than a confident "bug").

A routed model (``RepoRouter``) has two: ``trained`` from the out-of-fold predictions of cross-
validation (repositories with their own sub-model), ``unseen`` from leave-one-repository-out
predictions of the pooled fallback (every other repository: the usual case for a team that installs a
bundle trained elsewhere). A prediction then carries its calibrated probability and the measured
precision at that confidence, so an actions policy can ask for "precision 0.9" and mean it.

Plain JSON in the manifest, nothing deserialised; ``Calibration.from_json`` checks what it reads.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

STEPS = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99)
MIN_SUPPORT = 20  # a table row measured on fewer predictions than this promises nothing
TRAINED, UNSEEN = "trained", "unseen"
_GRID = np.exp(np.linspace(np.log(0.05), np.log(10.0), 107))  # temperatures tried, log-spaced


class CalibrationError(ValueError):
    """A manifest's calibration that is not what ``to_json`` writes."""


Row = tuple[float, float, int]  # (threshold, precision, predictions at or above it)


@dataclass(frozen=True)
class Calibration:
    temperature: float
    tables: dict[str, tuple[Row, ...]]  # by predicted label

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, row by row (the argmax is unchanged)."""
        if self.temperature == 1.0 or not len(proba):
            return proba
        return softmax(np.log(np.clip(proba, 1e-9, 1.0)) / self.temperature)

    def precision_at(self, label: str, confidence: float) -> float | None:
        """The precision measured among predictions of ``label`` at least this confident, as the lower
        end of its 95% interval (``lower_bound``): from the row of the highest threshold not above
        ``confidence`` that holds ``MIN_SUPPORT`` predictions (a lower one is the conservative answer
        where the top of the table is thin). None: not measured."""
        best = None
        for threshold, precision, n in self.tables.get(label, ()):
            if threshold <= confidence and n >= MIN_SUPPORT:
                best = (precision, n)
        return None if best is None else lower_bound(*best)

    def to_json(self) -> dict[str, Any]:
        return {"temperature": round(self.temperature, 6),
                "precision": {label: [{"threshold": t, "precision": p, "n": n} for t, p, n in rows]
                              for label, rows in self.tables.items()}}

    @classmethod
    def from_json(cls, data: Any) -> Calibration:
        try:
            temperature = float(data["temperature"])
            tables = {str(label): tuple((float(r["threshold"]), float(r["precision"]), int(r["n"]))
                                        for r in rows) for label, rows in data["precision"].items()}
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise CalibrationError(f"calibration is malformed ({exc.__class__.__name__}: {exc})") from None
        if not temperature > 0 or any(not 0 <= v <= 1 for rows in tables.values() for t, p, _ in rows
                                      for v in (t, p)):
            raise CalibrationError("calibration values out of range")
        return cls(temperature, tables)


def fit(classes: list[str], proba: np.ndarray, truth: np.ndarray) -> Calibration:
    """Temperature and precision tables from held-out predictions: ``proba`` rows over ``classes``,
    ``truth`` the column index of each row's true label."""
    proba, truth = np.asarray(proba, dtype=float), np.asarray(truth, dtype=int)
    scores = np.log(np.clip(proba, 1e-9, 1.0))
    temperature = float(min(_GRID, key=lambda t: _log_loss(scores / t, truth))) if len(truth) else 1.0
    calibrated = Calibration(temperature, {}).apply(proba)
    return Calibration(temperature, precision_tables(classes, calibrated, truth))


def precision_tables(classes: list[str], proba: np.ndarray, truth: np.ndarray) -> dict[str, tuple[Row, ...]]:
    """Per predicted label, for each threshold of ``STEPS``: the share right among the predictions of
    that label at least that confident, and how many there were (thresholds none reach: no row)."""
    confidence, predicted = proba.max(axis=1), proba.argmax(axis=1)
    correct = predicted == truth
    tables = {}
    for column, label in enumerate(classes):
        rows = []
        for t in STEPS:
            kept = (predicted == column) & (confidence >= t)
            if kept.any():
                rows.append((t, round(float(correct[kept].mean()), 4), int(kept.sum())))
        tables[str(label)] = tuple(rows)
    return tables


@functools.cache  # a bundle's tables hold a few dozen rows; every prediction asks for one
def lower_bound(precision: float, n: int, z: float = 1.645) -> float:
    """The Wilson score interval's lower end (one-sided 95%) for a share ``precision`` of ``n``: the
    precision a policy may count on, not the luck of a small sample. Measured by leaving each NLBSE'24
    repository out of a bundle's training (``bench.calibration_check``), the point estimate promised
    5-8 points more than the held-out repository gave; docs/predictor.md, "Calibration"."""
    if n <= 0:
        return 0.0
    centre = precision + z * z / (2 * n)
    spread = z * math.sqrt(precision * (1 - precision) / n + z * z / (4 * n * n))
    return round(max(0.0, (centre - spread) / (1 + z * z / n)), 4)


def softmax(scores: np.ndarray) -> np.ndarray:
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True)


def _log_loss(scores: np.ndarray, rows: np.ndarray) -> float:
    return float(-np.log(np.clip(softmax(scores)[np.arange(len(rows)), rows], 1e-12, 1.0)).mean())


def read(manifest: dict[str, Any]) -> dict[str, Calibration]:
    """The calibrations a manifest holds, by scope (``trained``, ``unseen``); none for an older bundle."""
    raw = manifest.get("calibration") or {}
    if not isinstance(raw, dict):
        raise CalibrationError("calibration must be an object")
    return {scope: Calibration.from_json(raw[scope]) for scope in (TRAINED, UNSEEN) if raw.get(scope)}


__all__ = ["MIN_SUPPORT", "STEPS", "TRAINED", "UNSEEN", "Calibration", "CalibrationError", "fit",
           "precision_tables", "read", "softmax"]
