"""Migration 0012 gives every imported event already logged its event key, from its payload alone,
equal to the key an import computes today: importing the same history again, through either API,
adds nothing twice. Over a real SQLite file migrated by Alembic."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command

from services.ingest.event_log import EventLog
from services.ingest.github.history import deliveries
from shared.database import alembic_config, create_engine, migrate
from tests.unit.test_github_history import EVENTS, REPOSITORY, event, issue

LABEL = {"name": "type-bug", "color": "e11d21"}
TWICE = [*EVENTS, event(106, "labeled", "2024-01-04T00:00:00Z", label=LABEL),
         event(107, "unlabeled", "2024-01-04T00:00:00Z", label=LABEL),
         event(108, "labeled", "2024-01-04T00:00:00Z", label=LABEL)]


def test_logged_imports_get_the_keys_an_import_computes_now(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    command.upgrade(alembic_config(url), "0011")
    today = deliveries(issue(labels=[], state="open"), TWICE, REPOSITORY)
    engine = create_engine(url)
    with engine.begin() as conn:  # as the importer before 0012 logged them: import-<event id>, no key
        for n, d in enumerate(today):
            payload = json.loads(d.payload_text)
            old_id = payload["imported"]["event_id"]
            del payload["imported"]["node_id"]
            conn.execute(sa.text(
                "INSERT INTO event_log (delivery_id, event, action, repo, issue_number, sender, "
                "received_at, payload, source) VALUES (:d, 'issues', :a, :r, 12, :s, :t, :p, 'import')"),
                {"d": f"import-{old_id}" if old_id else d.delivery_id, "a": d.action, "r": d.repo,
                 "s": d.sender, "t": f"2024-02-01 00:00:{n:02d}", "p": json.dumps(payload)})
        conn.execute(sa.text("INSERT INTO event_log (delivery_id, event, action, received_at, payload, "
                             "source) VALUES ('a-guid', 'issues', 'opened', '2024-02-02 00:00:00', '{}', "
                             "'live')"))
    engine.dispose()
    migrate(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        keys = dict(conn.execute(sa.text("SELECT delivery_id, event_key FROM event_log")).all())
    assert keys.pop("a-guid") is None
    assert sorted(keys.values()) == sorted(d.event_key for d in today)
    assert len(set(keys.values())) == len(today) == 8
    results = EventLog(engine).append_many(today)
    assert [r.new for r in results] == [False] * len(today)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM event_log")).scalar_one() == len(today) + 1
    engine.dispose()
