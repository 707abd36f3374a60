"""From one logged event to the task messages it triggers, with the issue snapshot inlined."""

from __future__ import annotations

from services.dispatcher.rules import Rule, matching_tasks
from shared.issues import NotAnIssueError, snapshot_of_issue
from shared.messages import EventEnvelope, IssueSnapshot, TaskMessage


class NotAnIssueEvent(NotAnIssueError):
    """A rule matched an event whose payload carries no usable issue."""


def snapshot(e: EventEnvelope) -> IssueSnapshot:
    """The payload's issue as the predictor reads it, mapped as training maps it (``shared.issues``)."""
    try:
        return snapshot_of_issue(e.payload.get("issue"), e.repo)
    except NotAnIssueError:
        raise NotAnIssueEvent(f"{e.event}.{e.action} delivery {e.delivery_id} has no issue object") from None


def route(rules: tuple[Rule, ...], e: EventEnvelope) -> list[TaskMessage]:
    tasks = [t for t in matching_tasks(rules, e) if not e.only_tasks or t in e.only_tasks]
    if not tasks:
        return []
    issue = snapshot(e)
    return [TaskMessage(task=t, delivery_id=e.delivery_id, position=e.position, event=e.event,
                        action=e.action, issue=issue, replay_id=e.replay_id,
                        model_version=e.model_version, source=e.source)
            for t in tasks]
