"""From one logged event to the task messages it triggers, with the issue snapshot inlined."""

from __future__ import annotations

from services.dispatcher.rules import Rule, matching_tasks
from shared.messages import EventEnvelope, IssueSnapshot, TaskMessage


class NotAnIssueEvent(ValueError):
    """A rule matched an event whose payload carries no usable issue."""


def snapshot(e: EventEnvelope) -> IssueSnapshot:
    issue = e.payload.get("issue")
    if not isinstance(issue, dict) or not isinstance(issue.get("number"), int):
        raise NotAnIssueEvent(f"{e.event}.{e.action} delivery {e.delivery_id} has no issue object")
    user = issue.get("user") if isinstance(issue.get("user"), dict) else {}
    labels = tuple(label["name"] for label in issue.get("labels") or []
                   if isinstance(label, dict) and isinstance(label.get("name"), str))
    return IssueSnapshot(
        repo=e.repo or "", number=issue["number"], url=str(issue.get("html_url") or ""),
        title=str(issue.get("title") or ""), body=str(issue.get("body") or ""),
        author=user.get("login"), labels=labels,
    )


def route(rules: tuple[Rule, ...], e: EventEnvelope) -> list[TaskMessage]:
    tasks = [t for t in matching_tasks(rules, e) if not e.only_tasks or t in e.only_tasks]
    if not tasks:
        return []
    issue = snapshot(e)
    return [TaskMessage(task=t, delivery_id=e.delivery_id, position=e.position, event=e.event,
                        action=e.action, issue=issue, replay_id=e.replay_id,
                        model_version=e.model_version)
            for t in tasks]
