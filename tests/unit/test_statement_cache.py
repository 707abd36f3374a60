"""The statements on the hot paths (every append, every stored batch) are compiled once: SQLAlchemy
caches a statement's compiled form only when it can build its cache key. SQLAlchemy 2.0 could not
for PostgreSQL's ``INSERT … ON CONFLICT`` and compiled the append anew on each execute (28% of
ingest's CPU under load); 2.1 can."""

import pytest
import sqlalchemy as sa

from services.ingest import event_log
from services.store import latest, writer

STATEMENTS = {
    "event log append": event_log.APPEND_FROM_ARRAYS,
    "prediction insert": writer.INSERT_FROM_JSON,
    "predictions by identity": writer.ROWS_BY_IDENTITY,
    "latest documents due": latest._TAKE_DUE,
    "issues marked due": latest._MARK_DUE,
    "best live prediction": latest._BEST_LIVE,
}


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_a_hot_statement_has_a_cache_key(name):
    assert STATEMENTS[name]._generate_cache_key() is not None, f"{name} is compiled on every execute"


def test_the_sqlite_append_has_a_cache_key():
    log = event_log.EventLog(sa.create_engine("sqlite://"))
    assert log._append._generate_cache_key() is not None
