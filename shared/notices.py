"""PostgreSQL ``LISTEN``/``NOTIFY``: a writer announces a commit, a follower wakes at once.

A notice is only a hint: it carries nothing, and one sent while the listener is reconnecting is
lost, so a follower still polls, slowly, and a notice only cuts its wait short. SQLite has no
notices (the embedded mode runs writer and follower in one process and wakes them directly).
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable

import sqlalchemy as sa

log = logging.getLogger(__name__)


def notify(conn: sa.Connection, channel: str) -> None:
    """Within the caller's transaction: delivered when it commits, dropped if it rolls back."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": channel})


def listen(engine: sa.Engine, channel: str, on_notice: Callable[[], None], stop: threading.Event,
           every: float = 1.0) -> None:
    """Call ``on_notice`` after each burst of notices on ``channel`` until ``stop``; a lost connection is
    replaced (after ``on_notice``, since notices may have been missed). Returns at once on SQLite."""
    if engine.dialect.name != "postgresql":
        return
    delay = every
    while not stop.is_set():
        conn = None
        try:
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            conn.detach()  # a session of its own: closing it ends the LISTEN
            conn.exec_driver_sql(f'LISTEN "{channel}"')
            raw = conn.connection.dbapi_connection
            delay = every
            while not stop.is_set():
                if select.select([raw], [], [], every) == ([], [], []):
                    continue
                raw.poll()
                if raw.notifies:
                    raw.notifies.clear()
                    on_notice()
        except Exception as exc:  # noqa: BLE001 - the driver's own errors too (poll): start over
            log.warning("listening for %s paused: %s", channel, str(exc).splitlines()[0][:200])
            on_notice()
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
        finally:
            if conn is not None:
                try:
                    conn.close()
                except sa.exc.DBAPIError:
                    pass
