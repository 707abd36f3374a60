"""The statements on the hot paths (every append, every stored batch) are compiled once: SQLAlchemy
caches a statement's compiled form only when it can build its cache key. SQLAlchemy 2.0 could not
for PostgreSQL's ``INSERT … ON CONFLICT`` and compiled the append anew on each execute (28% of
ingest's CPU under load); 2.1 can."""

import pytest
import sqlalchemy as sa

from services.ingest import event_log
from services.store import latest, writer
from shared.database.postgresql import POSTGRESQL
from shared.database.sqlite import SQLITE

STATEMENTS = {  # built once per backend by the database port (shared.database.once_per_backend)
    "event log append": event_log.append_statement,
    "prediction insert": writer.INSERT_NEW,
    "predictions by identity": writer.ROWS_BY_IDENTITY,
    "latest documents due": latest.TAKE_DUE,
    "issues marked due": latest.MARK_DUE,
    "best live prediction": latest.BEST_LIVE,
}
ON_POSTGRESQL = sorted(STATEMENTS)
ON_SQLITE = ["event log append", "prediction insert", "issues marked due"]  # the others: per list of keys


@pytest.mark.parametrize("name", ON_POSTGRESQL)
def test_a_hot_statement_has_a_cache_key(name):
    statement = STATEMENTS[name].of(POSTGRESQL).statement
    assert statement._generate_cache_key() is not None, f"{name} is compiled on every execute"


@pytest.mark.parametrize("name", ON_SQLITE)
def test_a_hot_sqlite_statement_has_a_cache_key(name):
    statement = STATEMENTS[name].of(SQLITE).statement
    assert statement._generate_cache_key() is not None, f"{name} is compiled on every execute"


def test_the_sqlite_append_has_a_cache_key():
    log = event_log.EventLog(sa.create_engine("sqlite://"))
    assert log._append.statement._generate_cache_key() is not None


def test_a_statement_is_built_once_per_backend():
    engine = sa.create_engine("sqlite://")
    assert event_log.EventLog(engine)._append is event_log.EventLog(engine)._append
