"""Issue type: bug, feature request or question, read from the repository's own labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.predictor.tasks import history
from services.predictor.tasks.base import Task

# Checked in this order for each label; letters around a match make it another word ("debug").
_PATTERNS = (
    ("bug", re.compile(r"(?<![a-z])bugs?(?![a-z])")),
    ("feature", re.compile(r"(?<![a-z])(features?|enhancements?)(?![a-z])")),
    ("question", re.compile(r"(?<![a-z])questions?(?![a-z])")),
)


def type_of_label(name: str) -> str | None:
    lowered = name.lower()
    for label, pattern in _PATTERNS:
        if pattern.search(lowered):
            return label
    return None


# Chosen by per-repository CV on the NLBSE'24 train split (bench/predictor_search.py, docs/predictor.md)
OTHERS_WEIGHT = {"light": 0.2, "heavy": 0.2, "tuned": 0.2}


@dataclass(frozen=True)
class IssueType(Task):
    name: str = "issuetype"
    labels: tuple[str, ...] = ("bug", "feature", "question")
    per_repo: bool = True  # projects label differently; NLBSE'24 trains one model per repository
    # NLBSE'24 0.790 (light 0.779), leave-one-repository-out 0.635 (light 0.575): docs/predictor.md
    preferred_kind: str = "heavy"

    def others_weight(self, kind: str) -> float:
        return OTHERS_WEIGHT.get(kind, 0.0)

    def label_from_history(self, issue: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
        """The first of the issue's labels that names a type; None when none does."""
        for name in history.label_names(issue, events):
            label = type_of_label(name)
            if label is not None:
                return label
        return None


TASK = IssueType()
