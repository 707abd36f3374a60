"""Turn one HTTP request into a verified, parsed webhook delivery (or a one-line refusal)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from services.ingest.signature import verify

DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_NUMBER = 2**31 - 1  # the event log's issue_number column (INTEGER)
# A JSON escape of a UTF-16 surrogate: a pair (an emoji, escaped) is one character once parsed, a lone
# one is no character at all and cannot be encoded. Only a payload holding such an escape is walked.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# GitHub's webhook events (@octokit/webhooks-examples): the closed set metric labels come from.
KNOWN_EVENTS = frozenset("""
branch_protection_rule check_run check_suite code_scanning_alert commit_comment create delete
dependabot_alert deploy_key deployment deployment_review deployment_status discussion
discussion_comment fork github_app_authorization gollum installation installation_repositories
installation_target issue_comment issues label marketplace_purchase member membership merge_group
meta milestone org_block organization package page_build ping project project_card project_column
projects_v2 projects_v2_item public pull_request pull_request_review pull_request_review_comment
pull_request_review_thread push registry_package release repository repository_dispatch
repository_import repository_ruleset repository_vulnerability_alert secret_scanning_alert
security_advisory security_and_analysis sponsorship star status team team_add watch
workflow_dispatch workflow_job workflow_run
""".split())


def event_label(event: str) -> str:
    """A metric label for an event name: GitHub's own, else ``other`` (labels are a closed set)."""
    return event if event in KNOWN_EVENTS else "other"


def printable(value: str | None, limit: int = 64) -> str | None:
    """A header value fit for a log line: bounded, control characters and non-ASCII escaped."""
    if value is None:
        return None
    shown = value[:limit].encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if c.isprintable() else "?" for c in shown) + ("…" if len(value) > limit else "")


class WebhookError(Exception):
    """A refused delivery: ``status`` is the HTTP answer, the message its one-line reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class WebhookDelivery:
    delivery_id: str
    hook_id: str | None
    event: str
    action: str | None
    repo: str | None
    issue_number: int | None
    sender: str | None
    payload_text: str
    source: str = "live"  # "live": a GitHub delivery; "import": history brought in through GitHub's APIs
    event_key: str | None = None  # an imported event's identity (services/ingest/github/history.py)


def _payload_text(body: bytes, content_type: str) -> str:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json":
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookError(400, "body is not UTF-8") from None
    if media_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=16)
        except (UnicodeDecodeError, ValueError):
            raise WebhookError(400, "form body is malformed") from None
        values = form.get("payload")
        if not values or len(values) != 1:
            raise WebhookError(400, "form body has no single 'payload' field")
        return values[0]
    raise WebhookError(415, f"unsupported content type {printable(media_type, 60) or '(none)'!r}: "
                            "use application/json or application/x-www-form-urlencoded")


def _nested(payload: dict, *path: str) -> Any:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def parse(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> WebhookDelivery:
    """Verify the signature first: an unsigned request learns nothing about what else is wrong."""
    if not verify(secrets, body, headers.get("X-Hub-Signature-256")):
        raise WebhookError(401, "missing or invalid X-Hub-Signature-256")
    payload_text = _payload_text(body, headers.get("Content-Type", ""))
    event = headers.get("X-GitHub-Event", "")
    delivery_id = headers.get("X-GitHub-Delivery", "")
    if not EVENT_NAME.match(event):
        raise WebhookError(400, "missing or malformed X-GitHub-Event header")
    if not DELIVERY_ID.match(delivery_id):
        raise WebhookError(400, "missing or malformed X-GitHub-Delivery header")
    try:
        payload = json.loads(payload_text)
    except json.JSONDecodeError as exc:
        raise WebhookError(400, f"payload is not JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise WebhookError(400, "payload is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer over Python's 4,300-digit conversion limit
        raise WebhookError(400, f"payload is not usable JSON: {str(exc)[:80]}") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, "payload is not a JSON object")
    if SURROGATE_ESCAPE.search(payload_text):
        try:
            where = lone_surrogate(payload)
        except RecursionError:
            raise WebhookError(400, "payload is nested too deeply") from None
        if where is not None:
            raise WebhookError(400, f"payload is not valid Unicode: a lone surrogate in {where}")
    action = payload.get("action")
    number = _nested(payload, "issue", "number") or _nested(payload, "pull_request", "number")
    number = number if isinstance(number, int) and not isinstance(number, bool) else None
    if number is not None and not 0 <= number <= MAX_NUMBER:
        raise WebhookError(400, "issue number out of range")
    hook_id = headers.get("X-GitHub-Hook-ID")
    return WebhookDelivery(
        delivery_id=delivery_id,
        hook_id=_storable("X-GitHub-Hook-ID", hook_id, 32),
        event=event,
        action=_storable("action", action, 64),
        repo=_storable("repository.full_name", _nested(payload, "repository", "full_name"), 255),
        issue_number=number,
        sender=_storable("sender.login", _nested(payload, "sender", "login"), 255),
        payload_text=payload_text,
    )


def lone_surrogate(value: Any, path: str = "payload") -> str | None:
    """Where a parsed JSON value holds a string (or a key) with a lone surrogate, as a printable
    path; None if nowhere. No stage downstream can encode such a string, so none is let in."""
    if isinstance(value, str):
        return None if value.isascii() or _encodable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            if not _encodable(key):
                return f"{path} (a key)"
            if (found := lone_surrogate(item, f"{path}.{printable(key, 40)}")) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := lone_surrogate(item, f"{path}[{i}]")) is not None:
                return found
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable(name: str, value: Any, limit: int) -> str | None:
    """A text column's value: cut to its length; one the database cannot hold is the sender's error
    (400), found here, before it joins a group commit with other deliveries."""
    if not isinstance(value, str):
        return None
    value = value[:limit]
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookError(400, f"{name} is not valid Unicode (a lone surrogate)") from None
    if "\x00" in value:
        raise WebhookError(400, f"{name} contains a NUL character")
    return value
