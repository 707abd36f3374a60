"""Reading GitHub issue objects and their event histories (REST API shapes) for training."""

from __future__ import annotations

from typing import Any


def chronological(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events in time order; the API already returns them so, but exports may not (sort is stable)."""
    return sorted(events, key=lambda e: e.get("created_at") or "")


def original_title(issue: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """The title before any edit: the ``from`` of the earliest ``renamed`` event, else the current one."""
    for event in chronological(events):
        if event.get("event") == "renamed" and isinstance(event.get("rename"), dict):
            return str(event["rename"].get("from") or "")
    return str(issue.get("title") or "")


def _name(label: Any) -> str:
    return str(label.get("name") or "") if isinstance(label, dict) else str(label)


def label_names(issue: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    """The issue's current labels; replayed from labeled/unlabeled events when the issue lacks them."""
    if issue.get("labels") is not None:
        return [_name(label) for label in issue["labels"]]
    names: list[str] = []
    for event in chronological(events):
        name = _name(event.get("label") or {})
        if event.get("event") == "labeled" and name not in names:
            names.append(name)
        elif event.get("event") == "unlabeled" and name in names:
            names.remove(name)
    return names

