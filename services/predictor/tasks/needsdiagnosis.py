"""webcompat's needsdiagnosis: does a new report deserve a diagnosis, or is it likely invalid?"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.predictor.tasks import history, text
from services.predictor.tasks.base import Task
from shared.messages import IssueSnapshot

POSITIVE, NEGATIVE = "needsdiagnosis", "not-needsdiagnosis"
MILESTONE = "needsdiagnosis"

# Parts of the webcompat.com report template that every report carries: noise to a classifier.
_DETAILS = re.compile(r"<details>.*?</details>", re.DOTALL | re.IGNORECASE)
_FOOTER = re.compile(r"_From \[webcompat\.com\]\([^)]*\) with ❤️_")
_ENV_LINE = re.compile(r"^\s*\*\*(Browser / Version|Operating System|Tested Another Browser)\*\*:.*$",
                       re.MULTILINE)
_FIELD_NAME = re.compile(r"\*\*(URL|Problem type|Description|Steps to Reproduce)\*\*:", re.IGNORECASE)


def strip_template(body: str | None) -> str:
    """Keep what the reporter wrote (site, problem type, description, steps), drop the form around it."""
    body = _DETAILS.sub(" ", body or "")
    body = _FOOTER.sub(" ", body)
    body = _ENV_LINE.sub("", body)
    return _FIELD_NAME.sub(" ", body)


def is_moderation_placeholder(title: str) -> bool:
    """webcompat hides unmoderated reports behind titles such as "In the moderation queue."."""
    return "in the moderation queue" in title.lower()


def _milestone_title(event: dict[str, Any]) -> str:
    milestone = event.get("milestone")
    return str(milestone.get("title") or "") if isinstance(milestone, dict) else ""


@dataclass(frozen=True)
class NeedsDiagnosis(Task):
    name: str = "needsdiagnosis"
    labels: tuple[str, ...] = (POSITIVE, NEGATIVE)

    def text(self, issue: IssueSnapshot) -> str:
        return text.title_and_body(issue.title, strip_template(issue.body))

    def label_from_history(self, issue: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
        """Positive if ever milestoned needsdiagnosis (later moves do not undo the triage decision);
        issues first seen under a moderation placeholder title are left out."""
        if is_moderation_placeholder(self.original_title(issue, events)):
            return None
        for event in history.chronological(events):
            if event.get("event") == "milestoned" and _milestone_title(event).strip().lower() == MILESTONE:
                return POSITIVE
        return NEGATIVE

    def training_title(self, issue: dict[str, Any], events: list[dict[str, Any]]) -> str:
        """The title as reported: predictions are made on new issues, before triagers rename them."""
        return self.original_title(issue, events)


TASK = NeedsDiagnosis()
