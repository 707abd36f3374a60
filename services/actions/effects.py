"""Carry out one claimed action on GitHub, looking at the issue first.

Looking first is what makes an action happen once and never against a person:
- what is already there (the label, the milestone, our comment, a closed issue) is not sent again,
  which also settles an action whose process died after sending and before recording it;
- what a person undid (a label removed, a milestone taken off, the issue reopened) is not redone.
A refusal (permission, a milestone that does not exist) settles the action as ``failed`` with
GitHub's answer; no answer at all (``GitHubUnreachable``) propagates, so the batch is retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.actions.ledger import Claim
from shared.github import GitHubClient, GitHubError, GitHubUnreachable

Outcome = tuple[str, str]  # (state, reason)


def marker(task: str) -> str:
    """Hidden in every comment we write: how the next look finds it."""
    return f"<!-- wcml-actions:{task} -->"


class Effects:
    def __init__(self, client: GitHubClient):
        self.client = client
        self._milestones: dict[str, dict[str, int]] = {}  # repo -> title -> number

    def apply(self, claim: Claim) -> Outcome:
        act: Callable[[Claim, dict[str, Any]], Outcome] = getattr(self, f"_{claim.kind}")
        try:
            return act(claim, self.client.issue(claim.repo, claim.number))
        except GitHubUnreachable:
            raise
        except GitHubError as exc:
            return "failed", str(exc)

    def _label(self, claim: Claim, issue: dict[str, Any]) -> Outcome:
        present = {label.get("name") for label in issue.get("labels") or [] if isinstance(label, dict)}
        missing = [name for name in claim.target.split(",") if name not in present]
        if not missing:
            return "done", "already on the issue: nothing sent"
        undone = self._undone(claim, lambda e: e.get("event") == "unlabeled"
                              and (e.get("label") or {}).get("name") in missing)
        if undone:
            name = undone["label"]["name"]
            return "skipped", f"label {name} was removed by {_who(undone)}: not added again"
        self.client.add_labels(claim.repo, claim.number, missing)
        return "done", f"added {', '.join(missing)}"

    def _milestone(self, claim: Claim, issue: dict[str, Any]) -> Outcome:
        current = (issue.get("milestone") or {}).get("title")
        if current == claim.target:
            return "done", "already on that milestone: nothing sent"
        if current:
            return "skipped", f"the issue is on milestone {current}: left as it is"
        undone = self._undone(claim, lambda e: e.get("event") == "demilestoned"
                              and (e.get("milestone") or {}).get("title") == claim.target)
        if undone:
            return "skipped", f"milestone {claim.target} was taken off by {_who(undone)}: not set again"
        number = self._milestone_number(claim.repo, claim.target)
        if number is None:
            return "failed", f"{claim.repo} has no milestone titled {claim.target!r}"
        self.client.update_issue(claim.repo, claim.number, milestone=number)
        return "done", f"set milestone {claim.target}"

    def _comment(self, claim: Claim, issue: dict[str, Any]) -> Outcome:
        tag = marker(claim.task)
        if issue.get("comments") != 0 and any(tag in (c.get("body") or "")
                                              for c in self.client.comments(claim.repo, claim.number)):
            return "done", "already commented: nothing sent"
        self.client.add_comment(claim.repo, claim.number, f"{claim.target}\n\n{tag}")
        return "done", "commented"

    def _close(self, claim: Claim, issue: dict[str, Any]) -> Outcome:
        if issue.get("state") == "closed":
            return "done", "already closed: nothing sent"
        undone = self._undone(claim, lambda e: e.get("event") == "reopened")
        if undone:
            return "skipped", f"reopened by {_who(undone)}: not closed again"
        self.client.update_issue(claim.repo, claim.number, state="closed", state_reason="not_planned")
        return "done", "closed as not planned"

    def _undone(self, claim: Claim, undid: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """The latest event of the issue's history that undid what this action would do, if any."""
        found = [e for e in self.client.issue_events(claim.repo, claim.number) if undid(e)]
        return found[-1] if found else None

    def _milestone_number(self, repo: str, title: str) -> int | None:
        if title not in self._milestones.get(repo, {}):
            self._milestones[repo] = {m.get("title"): int(m["number"]) for m in self.client.milestones(repo)}
        return self._milestones[repo].get(title)


def _who(event: dict[str, Any]) -> str:
    login = (event.get("actor") or {}).get("login") or "someone"
    when = event.get("created_at")
    return f"@{login}" + (f" at {when}" if when else "")
