"""Value checks a decoded ``Prediction`` must pass before it becomes a row and S3 keys.

``shared.messages.decode`` checks the shape; these check what the table and the blob
keys need (lengths, ranges, safe key segments), so a bad value is dead-lettered with
a reason instead of failing the whole batch's transaction over and over.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from shared.issues import valid_repo
from shared.messages import Prediction
from shared.times import TimeFormatError, parse_time

# Parts of S3 keys: no "/", never "." or "..", nothing a shell or URL must escape.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+@=-]{0,63}\Z")
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
RESERVED_TASKS = frozenset({"history"})  # the history documents' top-level prefix


class InvalidPrediction(ValueError):
    """A well-formed prediction message whose values the store cannot keep."""


def _segment(name: str, value: str) -> None:
    if not _SEGMENT.match(value):
        raise InvalidPrediction(f"{name} {value[:80]!r} is not 1-64 characters of [A-Za-z0-9._:+@=-]")


def _optional_text(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 64):
        raise InvalidPrediction(f"{name} must be null or a string of 1-64 characters")


def _probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise InvalidPrediction(f"{name} must be a number in [0, 1], got {value!r:.40}")
    return float(value)


def check(p: Prediction) -> datetime:
    """Raise ``InvalidPrediction`` naming the first bad value; return ``predicted_at`` parsed."""
    _segment("task", p.task)
    if p.task in RESERVED_TASKS:
        raise InvalidPrediction(f"task name {p.task!r} is reserved")
    _segment("model_version", p.model_version)
    _segment("delivery_id", p.delivery_id)
    if p.replay_id is not None:
        if not isinstance(p.replay_id, str):
            raise InvalidPrediction("replay_id must be null or a string")
        _segment("replay_id", p.replay_id)
    if len(p.repo) > 255 or not valid_repo(p.repo):
        raise InvalidPrediction(f"repo {p.repo[:80]!r} is not owner/name")
    if not 1 <= p.number <= _INT32:
        raise InvalidPrediction(f"number {p.number} is out of range")
    if not 0 <= p.position <= _INT64:
        raise InvalidPrediction(f"position {p.position} is out of range")
    if not p.label.strip() or len(p.label) > 64:
        raise InvalidPrediction("label must be 1-64 characters, not blank")
    _probability("confidence", p.confidence)
    for name in ("probability", "precision"):
        if getattr(p, name) is not None:
            _probability(name, getattr(p, name))
    for label, value in p.probabilities.items():
        _probability(f"probabilities[{label[:40]!r}]", value)
    if p.source not in ("live", "import"):
        raise InvalidPrediction(f"source must be live or import, not {p.source[:20]!r}")
    _optional_text("event", p.event)
    _optional_text("action", p.action)
    try:
        return parse_time(p.predicted_at)
    except TimeFormatError:
        raise InvalidPrediction(f"predicted_at {p.predicted_at[:40]!r} is not ISO 8601") from None
