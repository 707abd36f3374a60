"""From GraphQL's issue and timeline items to the REST shapes ``history.deliveries`` takes.

Pure functions. A GraphQL issue (the fields ``graphql.ISSUE_FIELDS`` selects) becomes the REST issue
object, and each of its timeline items the REST issue event of the same name, so that
``history.deliveries`` builds the same deliveries with the same event keys as a REST import of the
same repository:

- issue: ``id`` = ``fullDatabaseId`` (GraphQL's ``databaseId`` is a 32-bit Int, too small for
  today's ids), ``node_id``, ``number``, ``title``, ``body`` (None when empty, as REST says it),
  ``user``, ``labels``, ``state`` / ``state_reason`` lowercased, ``milestone``, ``assignees``,
  ``locked``, the three times, ``html_url``;
- event: ``id`` and ``node_id`` = the item's node id (the REST event id is not in GraphQL; the event
  key does not use it), ``event`` (REST's name), ``actor`` (None for a deleted user), ``created_at``
  and the subject where REST has one: ``label``, ``milestone.title``, ``rename.from/to``,
  ``assignee.login``, and a close's ``state_reason``.

Logins are REST's: GraphQL calls an App's bot ``name``, REST ``name[bot]``, so a ``Bot`` actor or
assignee gets the suffix here.
"""

from __future__ import annotations

from typing import Any

# GraphQL timeline item type -> REST issue event name
EVENT_NAMES = {
    "LabeledEvent": "labeled", "UnlabeledEvent": "unlabeled", "ClosedEvent": "closed",
    "ReopenedEvent": "reopened", "RenamedTitleEvent": "renamed", "MilestonedEvent": "milestoned",
    "DemilestonedEvent": "demilestoned", "AssignedEvent": "assigned", "UnassignedEvent": "unassigned",
    "LockedEvent": "locked", "UnlockedEvent": "unlocked", "PinnedEvent": "pinned",
    "UnpinnedEvent": "unpinned",
}


def login_of(actor: Any) -> dict[str, Any] | None:
    """REST's ``{"login": …}`` for a GraphQL actor (None for a deleted user, GitHub's ghost)."""
    if not isinstance(actor, dict) or not actor.get("login"):
        return None
    login = str(actor["login"])
    if actor.get("__typename") == "Bot" and not login.endswith("[bot]"):
        login += "[bot]"
    return {"login": login}


def _nodes(connection: Any) -> list[dict[str, Any]]:
    nodes = connection.get("nodes") if isinstance(connection, dict) else None
    return [n for n in nodes or [] if isinstance(n, dict)]


def _lower(value: Any) -> str | None:
    return str(value).lower() if value else None


def rest_issue(node: dict[str, Any]) -> dict[str, Any]:
    """The REST issue object for a GraphQL ``Issue``."""
    milestone = node.get("milestone")
    full_id = node.get("fullDatabaseId") or node.get("databaseId")
    return {
        "id": int(full_id) if full_id is not None else None,
        "node_id": node.get("id"),
        "number": node.get("number"),
        "title": node.get("title"),
        "body": node.get("body") or None,
        "user": login_of(node.get("author")),
        "labels": [{"name": label.get("name"), "color": label.get("color")}
                   for label in _nodes(node.get("labels"))],
        "state": _lower(node.get("state")),
        "state_reason": _lower(node.get("stateReason")),
        "milestone": ({"title": milestone.get("title"), "number": milestone.get("number")}
                      if isinstance(milestone, dict) else None),
        "assignees": [a for a in (login_of(n) for n in _nodes(node.get("assignees"))) if a],
        "locked": bool(node.get("locked")),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "closed_at": node.get("closedAt"),
        "html_url": node.get("url"),
    }


def rest_event(item: dict[str, Any]) -> dict[str, Any] | None:
    """The REST issue event for a GraphQL timeline item; None for an item of another type."""
    name = EVENT_NAMES.get(item.get("__typename") or "")
    if name is None or not item.get("id"):
        return None
    event: dict[str, Any] = {"id": item["id"], "node_id": item["id"], "event": name,
                             "actor": login_of(item.get("actor")), "created_at": item.get("createdAt")}
    if name in ("labeled", "unlabeled"):
        label = item.get("label") or {}
        event["label"] = {"name": label.get("name"), "color": label.get("color")}
    elif name in ("milestoned", "demilestoned"):
        event["milestone"] = {"title": item.get("milestoneTitle")}
    elif name == "renamed":
        event["rename"] = {"from": item.get("previousTitle"), "to": item.get("currentTitle")}
    elif name in ("assigned", "unassigned"):
        event["assignee"] = login_of(item.get("assignee"))
    elif name == "closed":
        event["state_reason"] = _lower(item.get("stateReason"))
    return event


def rest_events(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The REST events of a list of timeline items, in their order; other item types left out."""
    return [e for e in (rest_event(item) for item in items if isinstance(item, dict)) if e is not None]
