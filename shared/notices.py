"""Notices: a writer announces a commit, a follower wakes at once (PostgreSQL's ``LISTEN``/``NOTIFY``,
done by the database port, ``shared.database``).

A notice is only a hint: it carries nothing, and one sent while the listener is reconnecting is
lost, so a follower still polls, slowly, and a notice only cuts its wait short. SQLite has no
notices (the embedded mode runs writer and follower in one process and wakes them directly).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlalchemy as sa

from shared.database import backend_of


def notify(conn: sa.Connection, channel: str) -> None:
    """Within the caller's transaction: delivered when it commits, dropped if it rolls back."""
    backend_of(conn).notify(conn, channel)


def listen(engine: sa.Engine, channel: str, on_notice: Callable[[], None], stop: threading.Event,
           every: float = 1.0) -> None:
    """Call ``on_notice`` after each burst of notices on ``channel`` until ``stop``; a lost connection is
    replaced (after ``on_notice``, since notices may have been missed). Returns at once on SQLite."""
    backend_of(engine).listen(engine, channel, on_notice, stop, every)
