"""Pooled PostgreSQL connections: pinged at checkout only after a rest, renewed when they break."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from shared.database import _ping_when_idle, create_engine
from shared.errors import is_transient

BACKEND = sa.text("SELECT pg_backend_pid()")


@pytest.fixture
def engine(pg_url):
    engine = sa.create_engine(pg_url, pool_size=1, max_overflow=0)
    _ping_when_idle(engine, idle=0.3)
    pings = []
    ping = engine.dialect.do_ping
    engine.dialect.do_ping = lambda connection: pings.append(1) or ping(connection)  # counted, still sent
    engine.pings = pings
    yield engine
    engine.dispose()


def kill(pg_url, pid: int) -> None:
    """End that server process, as a PostgreSQL restart would."""
    admin = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()


def test_a_connection_in_use_is_not_pinged(engine):
    for _ in range(20):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    assert engine.pings == []  # one round trip per transaction saved


def test_a_rested_connection_that_died_is_replaced_at_checkout(engine, pg_url):
    with engine.connect() as conn:
        first = conn.execute(BACKEND).scalar_one()
    kill(pg_url, first)
    time.sleep(0.4)  # it rested: the next checkout pings it, finds it dead and connects anew
    with engine.connect() as conn:
        assert conn.execute(BACKEND).scalar_one() != first
    assert len(engine.pings) == 1


def test_a_busy_connection_that_died_fails_once_as_transient_then_the_pool_is_new(engine, pg_url):
    with engine.connect() as conn:
        first = conn.execute(BACKEND).scalar_one()
    kill(pg_url, first)
    with pytest.raises(sa.exc.DBAPIError) as failed, engine.connect() as conn:  # used a moment ago
        conn.execute(BACKEND)
    assert failed.value.connection_invalidated and is_transient(failed.value)  # callers retry
    with engine.connect() as conn:
        assert conn.execute(BACKEND).scalar_one() != first


def test_services_engines_ping_only_rested_connections(pg_url):
    engine = create_engine(pg_url)
    try:
        assert not engine.pool._pre_ping
        assert len(engine.pool.dispatch.checkout) == len(engine.pool.dispatch.checkin) == 1
    finally:
        engine.dispose()
