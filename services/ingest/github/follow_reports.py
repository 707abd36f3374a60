"""Reports of a follower's place: after each tick, the repository's ``github_follows`` row as a
``FollowReport`` on ``wcml.state`` (key ``follow``); the API keeps the newest of each repository and the
dashboard shows its lag. A report that cannot be sent (the broker down) is logged and the follower
goes on: the next tick reports again, whole."""

from __future__ import annotations

import logging
from collections.abc import Callable

from services.ingest.github.follow_state import Followed
from shared.broker import Broker, Outgoing
from shared.database import utcnow
from shared.messages import STATE_EXCHANGE, STATE_KEYS, FollowReport, encode

log = logging.getLogger(__name__)

Report = Callable[[Followed], None]


def report_of(followed: Followed) -> FollowReport:
    synced = followed.synced_at.isoformat() if followed.synced_at else None
    return FollowReport(repo=followed.repo, cursor=followed.cursor, synced_at=synced, ticks=followed.ticks,
                        appended=followed.appended, reported_at=utcnow().isoformat())


def to_broker(broker: Broker) -> Report:
    def report(followed: Followed) -> None:
        record = report_of(followed)
        try:
            broker.publish([Outgoing(STATE_EXCHANGE, STATE_KEYS[FollowReport], encode(record),
                                     message_id=f"follow-{record.repo}-{record.ticks}")])
        except Exception as exc:  # noqa: BLE001 - the dashboard waits for the next tick's report
            log.warning("follow %s: its report to the API was not sent (%s)", followed.repo, exc)

    return report
