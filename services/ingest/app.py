"""Ingest HTTP entry point: parse -> append to the log -> answer. No logic beyond that."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from flask import Blueprint, Flask, request

from services.ingest.event_log import EventLog
from services.ingest.group_commit import GroupCommitter, Unstorable
from services.ingest.webhook import WebhookError, event_label, parse, printable
from shared import metrics
from shared.http import answer, app_for

log = logging.getLogger(__name__)
deliveries_total = metrics.counter("wcml_ingest_deliveries_total", "Webhook deliveries by event and outcome",
                                   ("event", "outcome"))


def _read_body(limit: int) -> bytes:
    """Refuse an oversized body from its Content-Length, or after reading ``limit`` + 1 bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise WebhookError(413, f"body over the {limit}-byte limit")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise WebhookError(413, f"body over the {limit}-byte limit")
    return body


def ingest_blueprint(event_log: EventLog, secrets: Sequence[str], max_body_bytes: int,
                     on_append: Callable[[], None] = lambda: None) -> Blueprint:
    bp = Blueprint("ingest", __name__)
    committer = GroupCommitter(event_log)

    @bp.post("/webhooks/github")
    def github_webhook():
        try:
            delivery = parse(request.headers, _read_body(max_body_bytes), secrets)
        except WebhookError as exc:
            # Before the signature is checked nothing of the request is trusted: the event label is
            # "unverified", and what is logged of its headers is bounded and escaped.
            verified = exc.status not in (401, 413)
            event = event_label(request.headers.get("X-GitHub-Event", "")) if verified else "unverified"
            deliveries_total.labels(event, f"http_{exc.status}").inc()
            shown = printable(request.headers.get("X-GitHub-Delivery"))
            log.info("refused a delivery: %s", exc.reason, extra={"status": exc.status, "delivery": shown})
            return answer(exc.status, error=exc.reason)
        label = event_label(delivery.event)
        if delivery.event == "ping":
            deliveries_total.labels("ping", "pong").inc()
            return answer(200, status="pong", delivery=delivery.delivery_id)
        try:
            appended = committer.append(delivery)
        except Unstorable as exc:
            deliveries_total.labels(label, "http_400").inc()
            log.info("refused a delivery: %s", exc, extra={"status": 400, "delivery": delivery.delivery_id})
            return answer(400, error=str(exc))
        except (sa.exc.SQLAlchemyError, TimeoutError) as exc:
            deliveries_total.labels(label, "unavailable").inc()
            log.warning("event log unavailable: %s", type(exc).__name__)
            return answer(503, error="event log unavailable, retry the delivery")
        if not appended.new:
            deliveries_total.labels(label, "duplicate").inc()
            return answer(200, status="duplicate", delivery=delivery.delivery_id, position=appended.position)
        deliveries_total.labels(label, "accepted").inc()
        on_append()
        return answer(202, status="accepted", delivery=delivery.delivery_id, position=appended.position)

    return bp


def create_app(event_log: EventLog, secrets: Sequence[str], max_body_bytes: int,
               api_keys: Sequence[str] = ()) -> Flask:
    """The webhook endpoint on its own: the blueprint plus /healthz and /metrics (for ``api_keys``)."""
    return app_for("wcml-ingest", [ingest_blueprint(event_log, secrets, max_body_bytes)], event_log.ping,
                   api_keys=api_keys)
