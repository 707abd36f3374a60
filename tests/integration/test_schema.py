"""The tables the services define at run time are the tables the migrations create (PostgreSQL, SQLite).

Each table is defined twice by design: once for the code that uses it, once in a frozen migration.
Alembic's autogenerate comparison says where the two disagree; it must find nothing.
"""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.actions.tables import metadata as action_tables
from services.api.tables import metadata as api_tables
from services.ingest.event_log import metadata as ingest_tables
from services.ingest.github.follow_state import metadata as follow_tables
from services.ingest.github.state import metadata as import_tables
from services.ingest.replay_runs import metadata as replay_tables
from services.store.tables import metadata as store_tables
from shared.database import create_engine, migrate
from shared.predictions import metadata as prediction_tables

RUNTIME = [ingest_tables, import_tables, follow_tables, store_tables, prediction_tables, replay_tables,
           action_tables, api_tables]


@pytest.fixture(params=["postgresql", "sqlite"])
def migrated_url(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/s.db"
    migrate(url)
    return url


def test_runtime_tables_match_the_migrated_schema(migrated_url):
    engine = create_engine(migrated_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, RUNTIME)
    finally:
        engine.dispose()
    assert differences == []


def test_every_migrated_table_has_one_runtime_owner():
    tables = [name for metadata in RUNTIME for name in metadata.tables]
    assert sorted(tables) == ["actions", "api_actions", "api_follows", "api_replay_runs", "event_log",
                              "github_follows", "github_import_skips", "github_imports", "github_validators",
                              "latest_due", "predictions", "replay_runs"]
