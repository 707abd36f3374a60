"""Value checks a decoded ``Prediction`` must pass before it becomes a row and S3 keys.

``shared.messages.decode`` checks the shape; these check what the table and the blob keys need, so a
bad value is dead-lettered with a reason instead of failing the whole batch's transaction over and
over. Each field's length, range and allowed values are its declaration's (``shared.records.check``);
what the store adds is here: safe key segments, a repository's form, a label that is not blank, a
task name it keeps for itself, a time it can read.
"""

from __future__ import annotations

import re
from datetime import datetime

from shared import records
from shared.issues import valid_repo
from shared.messages import Prediction
from shared.times import TimeFormatError, parse_time

# Parts of S3 keys: no "/", never "." or "..", nothing a shell or URL must escape.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+@=-]{0,63}\Z")
RESERVED_TASKS = frozenset({"history"})  # the history documents' top-level prefix


class InvalidPrediction(ValueError):
    """A well-formed prediction message whose values the store cannot keep."""


def _segment(name: str, value: str) -> None:
    if not _SEGMENT.match(value):
        raise InvalidPrediction(f"{name} {value[:80]!r} is not 1-64 characters of [A-Za-z0-9._:+@=-]")


def check(p: Prediction) -> datetime:
    """Raise ``InvalidPrediction`` naming the first bad value; return ``predicted_at`` parsed."""
    records.check(p, InvalidPrediction)
    _segment("task", p.task)
    if p.task in RESERVED_TASKS:
        raise InvalidPrediction(f"task name {p.task!r} is reserved")
    _segment("model_version", p.model_version)
    _segment("delivery_id", p.delivery_id)
    if p.replay_id is not None:
        _segment("replay_id", p.replay_id)
    if not valid_repo(p.repo):
        raise InvalidPrediction(f"repo {p.repo[:80]!r} is not owner/name")
    if not p.label.strip():
        raise InvalidPrediction("label must not be blank")
    try:
        return parse_time(p.predicted_at)
    except TimeFormatError:
        raise InvalidPrediction(f"predicted_at {p.predicted_at[:40]!r} is not ISO 8601") from None
