"""LISTEN/NOTIFY on real PostgreSQL: a committed notice wakes the listener, a rolled-back one does not,
and a listener whose session is killed comes back."""

import threading
import time

import pytest
import sqlalchemy as sa

from shared.database import create_engine
from shared.notices import listen, notify
from tests.waiting import eventually

CHANNEL = "wcml_test_notices"


@pytest.fixture
def engine(pg_engine):
    return pg_engine


@pytest.fixture
def listening(engine):
    heard = []
    stop = threading.Event()
    thread = threading.Thread(target=listen, args=(engine, CHANNEL, lambda: heard.append(1), stop),
                              kwargs={"every": 0.2})
    thread.start()
    eventually(lambda: listeners(engine) == 1, timeout=10, interval=0.05, message="the LISTEN")
    yield heard
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def listeners(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE :q"),
                            {"q": f'LISTEN "{CHANNEL}"'}).scalar()


def test_a_committed_notice_wakes_the_listener_and_a_rolled_back_one_does_not(engine, listening):
    with engine.connect() as conn:
        with conn.begin() as transaction:
            notify(conn, CHANNEL)
            transaction.rollback()
    time.sleep(0.5)
    assert listening == []
    with engine.begin() as conn:
        notify(conn, CHANNEL)
    eventually(lambda: len(listening) == 1, timeout=5, interval=0.02, message="the notice")


def test_a_listener_whose_session_is_killed_listens_again(engine, listening):
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE :q"),
                     {"q": f'LISTEN "{CHANNEL}"'})
    eventually(lambda: len(listening) >= 1, timeout=5, interval=0.02,
               message="a wake for what may have been missed")
    eventually(lambda: listeners(engine) == 1, timeout=10, interval=0.05, message="the LISTEN again")
    before = len(listening)
    with engine.begin() as conn:
        notify(conn, CHANNEL)
    eventually(lambda: len(listening) > before, timeout=5, interval=0.02, message="the next notice")


def test_sqlite_has_no_notices_and_listen_returns(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        notify(conn, CHANNEL)  # nothing to send, no error
    listen(engine, CHANNEL, lambda: None, threading.Event())  # returns at once
    engine.dispose()
