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
_ENV_LINE = re.compile(r"^[ \t]*\*\*(Browser / Version|Operating System|Tested Another Browser)\*\*:.*$",
                       re.MULTILINE)
_FIELD_NAME = re.compile(r"\*\*(URL|Problem type|Description|Steps to Reproduce)\*\*:", re.IGNORECASE)


def strip_template(body: str | None) -> str:
    """Keep what the reporter wrote (site, problem type, description, steps), drop the form around it."""
    body = _DETAILS.sub(" ", body or "")
    body = _FOOTER.sub(" ", body)
    body = _ENV_LINE.sub("", body)
    return _FIELD_NAME.sub(" ", body)


# The milestones that say a report was a real web compatibility problem: triage sent it to diagnosis
# (``needsdiagnosis``), or it was diagnosed and went on: ``moved`` (to Bugzilla, a browser bug),
# ``needscontact`` / ``contactready`` / ``sitewait`` (a site problem, the site to be contacted or
# waited for). bugbug's needsdiagnosis model counts ``needsdiagnosis`` and ``moved``; a report sent
# straight from triage to ``needscontact``/``contactready``/``sitewait`` has skipped the diagnosis
# milestone, not the need for one, so those count too. Ever milestoned in one of them: positive, even if
# later moved on or closed (the triage decision is what the model predicts). Never: negative
# (``needstriage``, then ``invalid``, ``duplicate``, ``incomplete``, ``worksforme``, ``non-compat``…).
POSITIVE_MILESTONES = frozenset({MILESTONE, "moved", "needscontact", "contactready", "sitewait"})

# webcompat.com's placeholders: a report waiting in moderation is titled "In the moderation queue.";
# one rejected there is renamed "Issue closed." (bugbug's rollback skips both).
_REJECTED_TITLE = "issue closed."


def is_moderation_placeholder(title: str) -> bool:
    """A title webcompat puts on a report it has not released: in the queue, or rejected there."""
    lowered = title.strip().lower()
    return "in the moderation queue" in lowered or lowered == _REJECTED_TITLE


def released_title(issue: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """The title as reported, or as released from moderation: the ``from`` of the earliest rename that
    is not from a placeholder; with none, the current title. A moderated report is opened under the
    placeholder and renamed to the reporter's title on release, so its first rename is skipped."""
    for event in history.chronological(events):
        if event.get("event") == "renamed" and isinstance(event.get("rename"), dict):
            old = str(event["rename"].get("from") or "")
            if not is_moderation_placeholder(old):
                return old
    return str(issue.get("title") or "")


def _milestone_title(event: dict[str, Any]) -> str:
    milestone = event.get("milestone")
    return str(milestone.get("title") or "") if isinstance(milestone, dict) else ""


@dataclass(frozen=True)
class NeedsDiagnosis(Task):
    name: str = "needsdiagnosis"
    labels: tuple[str, ...] = (POSITIVE, NEGATIVE)

    def text(self, issue: IssueSnapshot) -> str:
        return text.title_and_body(issue.title, strip_template(text.head(issue.body)))

    def label_from_history(self, issue: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
        """Positive if ever milestoned in ``POSITIVE_MILESTONES``, else negative. A report first held in
        moderation counts with the title (and body) it was released with: those are the reports the
        ``action-needsmoderation`` rule scores. One never released (still queued, or rejected) is left
        out: there is no report to learn from."""
        if is_moderation_placeholder(self.original_title(issue, events)):
            return None
        for event in history.chronological(events):
            if (event.get("event") == "milestoned"
                    and _milestone_title(event).strip().lower() in POSITIVE_MILESTONES):
                return POSITIVE
        return NEGATIVE

    def original_title(self, issue: dict[str, Any], events: list[dict[str, Any]]) -> str:
        return released_title(issue, events)

    def training_title(self, issue: dict[str, Any], events: list[dict[str, Any]]) -> str:
        """The title as reported (or released from moderation): predictions are made on new issues,
        before triagers rename them."""
        return self.original_title(issue, events)


TASK = NeedsDiagnosis()
