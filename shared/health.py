"""``wcml healthcheck``: is this container's service able to work? One line when it is not.

``probe`` is what a consumer's ``/healthz`` (``shared.metrics_server``) answers too: the broker and the
database its settings name both answer.
"""

from __future__ import annotations

import urllib.request

from shared import topology
from shared.broker import connect
from shared.database import create_engine, ping
from shared.errors import UserError
from shared.settings import Settings


class Unhealthy(UserError):
    """What does not answer, in one line."""


def probe(settings: Settings) -> None:
    """Raise unless the broker (outside the embedded mode) and the database, where the settings name
    them, answer: a new connection to each, closed before it returns."""
    if settings.broker_url and not settings.embedded:
        broker = connect(settings.broker_url, connect_attempts=1)
        try:
            broker.queue_depth(topology.DEAD_QUEUE.name)
        finally:
            broker.close()
    if settings.database_url:
        engine = create_engine(settings.database_url)
        try:
            ping(engine)
        finally:
            engine.dispose()


def check(settings: Settings | None, url: str | None = None) -> int:
    """The service's own /healthz (``url``: an HTTP service's, or a consumer's metrics port), else its
    broker and database answer (``probe``)."""
    try:
        if url:
            urllib.request.urlopen(url, timeout=4).close()
            return 0
        probe(settings)
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said in one line
        first_line = (str(exc).splitlines() or [""])[0]
        raise Unhealthy(f"unhealthy: {type(exc).__name__}: {first_line}") from None
    return 0
