"""From a REST issue and its REST issue events to ``issues`` deliveries shaped like GitHub's webhooks.

Pure functions. Each delivery's payload is what the ``issues`` webhook would have carried at that
moment: ``action``, the ``issue`` as it was just after the event (title, labels, state, milestone,
assignees and lock walked back from the issue as it is now; the body cannot be, it is today's),
``repository``, ``sender`` (the event's actor), and ``label`` / ``milestone`` / ``assignee`` /
``changes`` where the webhook has them. A ``renamed`` event becomes the webhook's ``edited`` with
``changes.title.from``, as GitHub sends it.

Marked as imported three ways: ``source="import"`` (the event log's ``source`` column), a delivery
id ``import-<event key>`` (``import-opened-<issue id>`` for the opening, which has no event of its
own), never a GitHub delivery's GUID; and the payload's extra ``imported`` object (``event_id``,
``node_id``, the REST ``event`` name, ``created_at``: when it happened on GitHub, since the log's
``received_at`` is when it was imported).

An imported event's identity is its **event key** (``event_key``), the same whichever API read it:
the issue's id (REST ``id``, GraphQL ``databaseId``), the REST event name, its subject (the label's
name, the milestone's title, the assignee's login, the title before and after), the actor's login,
the second it happened, and how many events of the issue before it share all of these (GitHub lets
a label go on, off and on again within one second), hashed. Not GitHub's event id (the GraphQL API
does not give it for timeline events) nor its ``node_id`` (GitHub serves two formats of them, and
logs imported before this key hold none): every field of the key is in both APIs and in every
imported payload, so the logs already imported were given their keys by a migration (0012), and
importing again, through either API, adds nothing twice (``EventLog.append_many`` leaves out a key
it holds).

A webhook GitHub delivered has the same key (``webhook_keys``): its issue's id, the REST name of its
action (``edited`` with a new title is ``renamed``), the same subject, its sender, its issue's
``updated_at`` (GitHub sets it to the change's time) and its ordinal among the issue's webhooks. So a
follower (``follow.py``) leaves out what a webhook logged; a deletion found by polling is keyed
``deleted-<issue id>`` (``deleted``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from typing import Any

from services.ingest.webhook import WebhookDelivery

SOURCE = "import"
PREFIX = "import-"

# REST issue event -> the ``issues`` webhook action it is; other events (referenced, mentioned,
# subscribed, comment_deleted, …) are not ``issues`` webhooks and are left out.
ACTIONS = {
    "closed": "closed", "reopened": "reopened", "labeled": "labeled", "unlabeled": "unlabeled",
    "milestoned": "milestoned", "demilestoned": "demilestoned", "renamed": "edited",
    "assigned": "assigned", "unassigned": "unassigned", "locked": "locked", "unlocked": "unlocked",
    "pinned": "pinned", "unpinned": "unpinned",
}


def opened_key(issue_id: Any) -> str:
    return f"opened-{issue_id}"


def opened_delivery_id(issue: dict[str, Any]) -> str:
    return f"{PREFIX}{opened_key(issue['id'])}"


def subject(event_name: str, event: dict[str, Any]) -> str:
    """What a REST issue event acted on, as both APIs and every imported payload state it."""
    if event_name in ("labeled", "unlabeled"):
        return str((event.get("label") or {}).get("name") or "")
    if event_name in ("milestoned", "demilestoned"):
        return str((event.get("milestone") or {}).get("title") or "")
    if event_name in ("assigned", "unassigned"):
        return str((event.get("assignee") or {}).get("login") or "")
    if event_name == "renamed":
        rename = event.get("rename") or {}
        return f"{rename.get('from') or ''}\x00{rename.get('to') or ''}"
    return ""


def key_fields(issue_id: Any, event_name: str, subject_: str, actor: Any, created_at: str | None) -> str:
    login = actor.get("login") if isinstance(actor, dict) else None
    return "\x1f".join((str(issue_id), event_name, subject_, str(login or ""), created_at or ""))


def event_key(fields: str, ordinal: int) -> str:
    """The identity of an issue's event: its fields (``key_fields``) and how many of the issue's events
    before it have the same, hashed (40 hex digits)."""
    return hashlib.sha256(f"{fields}\x1f{ordinal}".encode()).hexdigest()[:40]


def event_keys(issue_id: Any, history: list[dict[str, Any]]) -> list[str]:
    """The keys of an issue's importable events, given in the order they happened."""
    seen: Counter[str] = Counter()
    keys = []
    for event in history:
        fields = key_fields(issue_id, event["event"], subject(event["event"], event), event.get("actor"),
                            event.get("created_at"))
        keys.append(event_key(fields, seen[fields]))
        seen[fields] += 1
    return keys


# The ``issues`` webhook actions that are REST issue events of the same name; ``opened`` has its own
# key and ``edited`` is the REST ``renamed`` only when it changed the title.
WEBHOOK_EVENTS = frozenset(ACTIONS) - {"renamed"}


def webhook_fields(payload: dict[str, Any]) -> str | None:
    """The key fields (``key_fields``) of a live ``issues`` webhook's payload, as its imported twin
    has them; None for ``opened`` (its key is ``opened_key``) and for what no REST event is (an edit
    of the body, a deletion, a transfer).

    The time is the issue's ``updated_at`` in the payload: GitHub sets it to the moment of the change
    the webhook reports, which is the REST event's ``created_at`` (and what an imported payload holds
    too, since ``deliveries`` sets it so). That is what makes a webhook's key and the key of the same
    event read later through the API agree."""
    action, issue = payload.get("action"), payload.get("issue")
    if not isinstance(issue, dict):
        return None
    if action == "edited":
        title = ((payload.get("changes") or {}).get("title") or {})
        if "from" not in title:
            return None
        event_name, event = "renamed", {"rename": {"from": title.get("from"), "to": issue.get("title")}}
    elif action in WEBHOOK_EVENTS:
        event_name, event = action, payload
    else:
        return None
    return key_fields(issue.get("id"), event_name, subject(event_name, event), payload.get("sender"),
                      issue.get("updated_at"))


def webhook_keys(payloads: list[dict[str, Any]]) -> list[str | None]:
    """The event key each of one issue's live ``issues`` webhooks would have had if it had been
    imported instead, given in log order: ``opened_key`` for the opening, the hashed fields with
    their ordinal (counted over these webhooks, as ``event_keys`` counts over the REST history) for
    the rest, None for a webhook no REST event is."""
    seen: Counter[str] = Counter()
    keys: list[str | None] = []
    for payload in payloads:
        if payload.get("action") == "opened" and isinstance(payload.get("issue"), dict):
            keys.append(opened_key(payload["issue"].get("id")))
            continue
        fields = webhook_fields(payload)
        keys.append(None if fields is None else event_key(fields, seen[fields]))
        if fields is not None:
            seen[fields] += 1
    return keys


def deleted_key(issue_id: Any) -> str:
    return f"deleted-{issue_id}"


def deleted(issue: dict[str, Any], repository: dict[str, Any]) -> WebhookDelivery:
    """The ``issues`` ``deleted`` webhook GitHub would have sent for an issue found deleted (410):
    ``issue`` as last known (the log's newest payload of it), no sender (the API does not say who),
    key ``deleted-<issue id>``."""
    payload = {"action": "deleted", "issue": issue, "repository": repository, "sender": None,
               "imported": {"event_id": None, "node_id": issue.get("node_id"), "event": "deleted",
                            "created_at": None}}
    key = deleted_key(issue.get("id"))
    return WebhookDelivery(
        delivery_id=f"{PREFIX}{key}", event_key=key, hook_id=None, event="issues", action="deleted",
        repo=repository.get("full_name"), issue_number=issue.get("number"), sender=None,
        payload_text=_json_text(payload), source=SOURCE)


def importable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events that are ``issues`` webhooks, in the order they happened (stable on ties: the API's
    own order, which is by id)."""
    chosen = [e for e in events if e.get("event") in ACTIONS and e.get("id") is not None]
    return sorted(chosen, key=lambda e: e.get("created_at") or "")


def deliveries(issue: dict[str, Any], events: list[dict[str, Any]],
               repository: dict[str, Any]) -> list[WebhookDelivery]:
    """The opening, then one delivery per importable event, in the order they happened."""
    history = importable(events)
    state = _initial(issue, history)
    out = [_delivery(opened_key(issue["id"]), "opened", issue, state, repository, issue.get("user"),
                     {}, {"event_id": None, "node_id": issue.get("node_id"), "event": "opened",
                          "created_at": issue.get("created_at")})]
    for event, key in zip(history, event_keys(issue["id"], history), strict=True):
        action = ACTIONS[event["event"]]
        extra = _apply(state, event, issue)
        state["updated_at"] = event.get("created_at") or state["updated_at"]
        out.append(_delivery(key, action, issue, state, repository, event.get("actor"), extra,
                             {"event_id": event["id"] if isinstance(event["id"], int) else None,
                              "node_id": event.get("node_id"), "event": event["event"],
                              "created_at": event.get("created_at")}))
    return out


# -- the issue as it was -----------------------------------------------------------------------

def _same(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str) -> bool:
    return isinstance(a, dict) and isinstance(b, dict) and a.get(key) == b.get(key)


def _label(event: dict[str, Any], issue: dict[str, Any]) -> dict[str, Any]:
    """The event's label ({name, color}), completed from the issue's own label of that name."""
    label = event.get("label") or {}
    for known in issue.get("labels") or []:
        if _same(known, label, "name"):
            return {**known, **label}
    return dict(label)


def _milestone(event: dict[str, Any], issue: dict[str, Any]) -> dict[str, Any]:
    milestone = event.get("milestone") or {}
    known = issue.get("milestone")
    return {**known, **milestone} if _same(known, milestone, "title") else dict(milestone)


def _initial(issue: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue when it was opened: today's, with every event undone, newest first."""
    labels = [dict(label) for label in issue.get("labels") or [] if isinstance(label, dict)]
    assignees = [dict(a) for a in issue.get("assignees") or [] if isinstance(a, dict)]
    title = issue.get("title")
    milestone = issue.get("milestone")
    locked = bool(issue.get("locked"))
    for event in reversed(history):
        kind = event["event"]
        if kind == "labeled":
            labels = [label for label in labels if not _same(label, event.get("label"), "name")]
        elif kind == "unlabeled" and not any(_same(lb, event.get("label"), "name") for lb in labels):
            labels.insert(0, _label(event, issue))
        elif kind == "renamed":
            title = (event.get("rename") or {}).get("from", title)
        elif kind == "milestoned":
            milestone = None
        elif kind == "demilestoned":
            milestone = _milestone(event, issue)
        elif kind == "assigned":
            assignees = [a for a in assignees if not _same(a, event.get("assignee"), "login")]
        elif kind == "unassigned" and event.get("assignee"):
            assignees.insert(0, dict(event["assignee"]))
        elif kind in ("locked", "unlocked"):
            locked = kind == "unlocked"
    return {"title": title, "labels": labels, "assignees": assignees, "milestone": milestone,
            "locked": locked, "state": "open", "state_reason": None, "closed_at": None,
            "updated_at": issue.get("created_at")}


def _apply(state: dict[str, Any], event: dict[str, Any], issue: dict[str, Any]) -> dict[str, Any]:
    """Move ``state`` past the event; return the webhook's extra fields for it."""
    kind, at = event["event"], event.get("created_at")
    if kind in ("labeled", "unlabeled"):
        label = _label(event, issue)
        state["labels"] = [lb for lb in state["labels"] if not _same(lb, label, "name")]
        if kind == "labeled":
            state["labels"].append(label)
            # In the order GitHub lists the issue's labels today, so that after the last event the
            # issue is today's issue, labels in the same order (a label rule may take the first).
            today = [lb.get("name") for lb in issue.get("labels") or [] if isinstance(lb, dict)]
            state["labels"].sort(key=lambda lb: today.index(lb.get("name")) if lb.get("name") in today
                                 else len(today))
        return {"label": label}
    if kind in ("milestoned", "demilestoned"):
        milestone = _milestone(event, issue)
        state["milestone"] = milestone if kind == "milestoned" else None
        return {"milestone": milestone}
    if kind == "renamed":
        rename = event.get("rename") or {}
        state["title"] = rename.get("to", state["title"])
        return {"changes": {"title": {"from": rename.get("from")}}}
    if kind in ("assigned", "unassigned"):
        assignee = dict(event.get("assignee") or {})
        state["assignees"] = [a for a in state["assignees"] if not _same(a, assignee, "login")]
        if kind == "assigned":
            state["assignees"].append(assignee)
        return {"assignee": assignee}
    if kind == "closed":
        state.update(state="closed", closed_at=at, state_reason=event.get("state_reason")
                     or issue.get("state_reason") or "completed")
    elif kind == "reopened":
        state.update(state="open", closed_at=None, state_reason="reopened")
    elif kind in ("locked", "unlocked"):
        state["locked"] = kind == "locked"
    return {}


def _delivery(key: str, action: str, issue: dict[str, Any], state: dict[str, Any],
              repository: dict[str, Any], sender: Any, extra: dict[str, Any],
              imported: dict[str, Any]) -> WebhookDelivery:
    then = copy.deepcopy({**issue, **state})
    then["assignee"] = then["assignees"][0] if then["assignees"] else None
    payload = {"action": action, "issue": then, **extra, "repository": repository, "sender": sender,
               "imported": imported}
    return WebhookDelivery(
        delivery_id=f"{PREFIX}{key}", event_key=key, hook_id=None, event="issues", action=action,
        repo=repository.get("full_name"), issue_number=issue.get("number"),
        sender=sender.get("login") if isinstance(sender, dict) else None,
        payload_text=_json_text(payload), source=SOURCE,
    )


def _json_text(payload: dict[str, Any]) -> str:
    """The payload as the log keeps it: UTF-8 where it can be encoded; escaped (``\\ud800``) where
    GitHub's text holds a lone surrogate, which the snapshot rule then reads as U+FFFD."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload, separators=(",", ":"))
    return text
