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
    source: str = "live"  # "live": a GitHub delivery; "import": history brought in through the REST API


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
    raise WebhookError(415, f"unsupported content type {media_type or '(none)'!r}: "
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
    if not isinstance(payload, dict):
        raise WebhookError(400, "payload is not a JSON object")
    action = payload.get("action")
    number = _nested(payload, "issue", "number") or _nested(payload, "pull_request", "number")
    hook_id = headers.get("X-GitHub-Hook-ID")
    return WebhookDelivery(
        delivery_id=delivery_id,
        hook_id=hook_id[:32] if hook_id else None,
        event=event,
        action=action[:64] if isinstance(action, str) else None,
        repo=_str(_nested(payload, "repository", "full_name")),
        issue_number=number if isinstance(number, int) and not isinstance(number, bool) else None,
        sender=_str(_nested(payload, "sender", "login")),
        payload_text=payload_text,
    )


def _str(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) else None
