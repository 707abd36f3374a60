"""Records declared once (shared/records.py): what each field helper derives, and that the pipeline's
records (Prediction, EventEnvelope, ReplayRun, ActionRecord) derive their tables, rows, JSON and
schemas from their declaration."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from sqlalchemy.dialects import postgresql, sqlite

from shared import records
from shared.times import TimeFormatError


@dataclass(frozen=True)
class Thing:
    name: str = records.text(32, description="Its name.", example="a")
    count: int = records.integer(minimum=1, maximum=records.INT32)
    total: int = records.integer(minimum=0)
    score: float = records.number(minimum=0, maximum=1)
    weights: dict[str, float] = records.mapping(minimum=0, maximum=1)
    seen_at: str = records.moment()
    body: dict[str, Any] = records.document()
    note: str | None = records.text(None, default=None)
    ratio: float | None = records.number(default=None)
    kind: str = records.text(8, enum=("a", "b"), default="a")
    hidden: bool = records.flag(False)
    scratch: str | None = None  # the message's own: no column, no JSON, no check


@dataclass(frozen=True, kw_only=True)
class StoredThing(Thing):
    id: int = records.row_id(description="Row id.")
    stored_at: str = records.moment()


THING = Thing(name="n", count=3, total=2**40, score=0.5, weights={"x": 1}, seen_at="2024-05-01T00:00:00Z",
              body={"k": [1, 2]}, ratio=2)


def test_fields_are_declared_fields_only_row_ids_first_then_as_declared():
    assert records.names_of(Thing) == ("name", "count", "total", "score", "weights", "seen_at", "body",
                                       "note", "ratio", "kind", "hidden")
    assert records.names_of(StoredThing) == ("id", *records.names_of(Thing), "stored_at")
    assert records.spec_of(Thing, "count").maximum == records.INT32
    with pytest.raises(KeyError, match="scratch"):
        records.spec_of(Thing, "scratch")


def test_columns_carry_type_length_nullability_and_server_default():
    table = records.table("things", sa.MetaData(), StoredThing, sa.Index("ix_things_name", "name"))
    c = table.c
    assert [col.name for col in table.columns] == list(records.names_of(StoredThing))
    assert c.id.primary_key and c.id.autoincrement is True
    assert isinstance(c.name.type, sa.String) and c.name.type.length == 32 and not c.name.nullable
    assert isinstance(c.note.type, sa.Text) and c.note.nullable
    assert isinstance(c.count.type, sa.Integer) and not isinstance(c.count.type, sa.BigInteger)
    assert isinstance(c.total.type, sa.BigInteger)
    assert isinstance(c.score.type, sa.Float) and isinstance(c.ratio.type, sa.Float) and c.ratio.nullable
    assert isinstance(c.weights.type, sa.JSON) and isinstance(c.body.type, sa.Text)
    assert isinstance(c.seen_at.type, sa.DateTime) and c.seen_at.type.timezone
    assert isinstance(c.hidden.type, sa.Boolean)
    assert c.kind.server_default.arg == "a" and c.note.server_default is None  # a None default is none
    assert "scratch" not in c
    ddl = {name: str(sa.schema.CreateTable(table).compile(dialect=dialect.dialect()))
           for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}
    assert "id BIGSERIAL NOT NULL" in ddl["postgresql"] and "id INTEGER NOT NULL" in ddl["sqlite"]
    assert "hidden BOOLEAN DEFAULT false NOT NULL" in ddl["postgresql"]
    assert "kind VARCHAR(8) DEFAULT 'a' NOT NULL" in ddl["sqlite"]


def test_a_record_to_its_row_and_a_row_to_json_and_back():
    row = records.row_of(Thing)(THING)
    assert row == {"name": "n", "count": 3, "total": 2**40, "score": 0.5, "weights": {"x": 1.0},
                   "seen_at": "2024-05-01T00:00:00Z", "body": '{"k":[1,2]}', "note": None, "ratio": 2.0,
                   "kind": "a", "hidden": False}
    assert isinstance(row["weights"]["x"], float) and isinstance(row["ratio"], float)
    stored = {**row, "id": 9, "seen_at": datetime(2024, 5, 1), "stored_at": datetime(2024, 5, 2, tzinfo=UTC),
              "hidden": 0}  # as a database hands them back (SQLite: naive UTC, 0 for false)
    assert records.json_of(StoredThing)(stored) == {
        **row, "id": 9, "seen_at": "2024-05-01T00:00:00Z", "stored_at": "2024-05-02T00:00:00Z",
        "body": {"k": [1, 2]}, "hidden": False}
    assert records.json_of(StoredThing)({k: v for k, v in stored.items() if k != "note"})["note"] is None

    class Row:  # a SQLAlchemy Row reads by attribute
        def __init__(self, values):
            self.__dict__.update(values)

    back = records.message_of(Thing)(Row(stored))
    assert back == Thing(**{**THING.__dict__, "seen_at": "2024-05-01T00:00:00+00:00", "ratio": 2.0,
                            "weights": {"x": 1.0}})
    assert back.scratch is None  # undeclared: its default


@pytest.mark.parametrize("changes, reason", [
    ({"name": ""}, "name must be 1-32 characters, not 0"),
    ({"name": "x" * 33}, "name must be 1-32 characters, not 33"),
    ({"count": 0}, "count 0 is out of range"),
    ({"count": 2**31}, "count 2147483648 is out of range"),
    ({"total": -1}, "total -1 is out of range"),
    ({"score": 1.5}, "score must be a number in [0, 1], got 1.5"),
    ({"score": math.nan}, "score must be a number in [0, 1], got nan"),
    ({"score": True}, "score must be a number in [0, 1], got True"),
    ({"weights": {"x": 0.5, "y": -0.1}}, "weights['y'] must be a number in [0, 1], got -0.1"),
    ({"ratio": math.inf}, "ratio must be a number in [, ], got inf"),
    ({"ratio": "many"}, "ratio must be a number in [, ]"),
    ({"kind": "c"}, "kind must be a or b, not 'c'"),
])
def test_check_names_the_field_and_why(changes, reason):
    bad = Thing(**{**THING.__dict__, **changes})
    with pytest.raises(records.InvalidValue) as refused:
        records.check(bad)
    assert str(refused.value).startswith(reason)


def test_check_passes_a_good_record_and_a_none_where_allowed_and_raises_the_callers_error():
    records.check(THING)
    records.check(Thing(**{**THING.__dict__, "ratio": None, "note": None, "scratch": "anything"}))

    class Refused(Exception):
        pass

    with pytest.raises(Refused, match="count"):
        records.check(Thing(**{**THING.__dict__, "count": 0}), Refused)


def test_schema_states_types_nullability_enum_and_number_bounds():
    schema = records.schema_of(StoredThing)
    assert schema["additionalProperties"] is False
    assert schema["required"] == list(records.names_of(StoredThing))
    p = schema["properties"]
    assert p["id"] == {"type": "integer", "description": "Row id."}
    assert p["name"] == {"type": "string", "description": "Its name.", "example": "a"}  # no length
    assert p["count"] == {"type": "integer"}  # the table's range is not a promise to readers
    assert p["score"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert p["ratio"] == {"type": "number", "nullable": True}
    assert p["weights"] == {"type": "object", "additionalProperties": {"type": "number", "minimum": 0,
                                                                       "maximum": 1}}
    assert p["seen_at"] == {"type": "string", "format": "date-time"}
    assert p["body"] == {"type": "object"} and p["hidden"] == {"type": "boolean"}
    assert p["kind"] == {"type": "string", "enum": ["a", "b"]}
    assert "scratch" not in p
    when = datetime(2024, 5, 2, tzinfo=UTC)
    document = records.json_of(StoredThing)({**records.row_of(Thing)(THING), "id": 1, "seen_at": when,
                                             "stored_at": when})
    OAS30Validator(schema, format_checker=oas30_format_checker).validate(document)
    with pytest.raises(Exception):  # noqa: B017 - the schema refuses what the record is not
        OAS30Validator(schema).validate({**document, "kind": "c"})


@dataclass(frozen=True)
class Keyed:
    keyed_id: str = records.text(16, column="id", key=True)  # the table's and JSON's "id"
    version: int = records.integer(minimum=0, shown=False)
    tags: list[str] = records.strings()
    options: dict[str, Any] = records.json_object(description="Options.")
    done_at: str | None = records.moment(default=None)


KEYED = Keyed(keyed_id="k-1", version=2, tags=["a"], options={"x": [1]})


def test_a_field_known_by_another_name_a_key_bookkeeping_lists_and_json_objects():
    table = records.table("keyed", sa.MetaData(), Keyed, server_defaults={"version": "0"})
    assert records.names_of(Keyed) == ("id", "version", "tags", "options", "done_at")
    assert [c.name for c in table.columns] == list(records.names_of(Keyed))
    c = table.c
    assert c.id.primary_key and isinstance(c.id.type, sa.String) and c.id.type.length == 16
    assert c.version.server_default.arg == "0" and not c.version.primary_key
    assert isinstance(c.tags.type, sa.JSON) and isinstance(c.options.type, sa.JSON)
    assert records.spec_of(Keyed, "keyed_id").column == "id"

    row = records.row_of(Keyed)(KEYED)
    assert row == {"id": "k-1", "version": 2, "tags": ["a"], "options": {"x": [1]}, "done_at": None}
    timed = records.row_of(Keyed, times=True)(replace(KEYED, done_at="2024-05-01T01:00:00+01:00"))
    assert timed["done_at"] == datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(TimeFormatError):
        records.row_of(Keyed, times=True)(replace(KEYED, done_at="soon"))

    shown = records.json_of(Keyed)({**row, "tags": ("a",), "options": None})  # as a database may hand them
    assert shown == {"id": "k-1", "tags": ["a"], "options": {}, "done_at": None}  # no version: not shown
    schema = records.schema_of(Keyed)
    assert schema["required"] == list(shown) == list(schema["properties"])
    assert schema["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    assert schema["properties"]["options"] == {"type": "object", "description": "Options."}
    OAS30Validator(schema, format_checker=oas30_format_checker).validate(shown)

    class Row:
        id, version, tags, options, done_at = "k-1", 2, ("a",), {"x": [1]}, datetime(2024, 5, 1)

    assert records.message_of(Keyed)(Row()) == replace(KEYED, done_at="2024-05-01T00:00:00+00:00")


def test_what_one_table_alone_says_of_a_column():
    copied = records.table("copied", sa.MetaData(), StoredThing, generated_ids=False)
    assert copied.c.id.primary_key and copied.c.id.autoincrement is False
    assert records.table("made", sa.MetaData(), StoredThing).c.id.autoincrement is True
    with pytest.raises(KeyError, match="nothing"):
        records.table("t", sa.MetaData(), Keyed, server_defaults={"nothing": "0"})


# -- the pipeline's records --------------------------------------------------------------------------

def test_a_stored_prediction_is_the_message_and_its_stored_extension_everywhere():
    from services.api.openapi import openapi_document
    from services.store.writer import _row
    from shared.messages import Prediction
    from shared.predictions import FIELDS, StoredPrediction, predictions, record
    from tests.builders import make

    message = records.names_of(Prediction)
    assert FIELDS == ("id", *message, "stored_at", "blob_key")
    assert [c.name for c in predictions.columns] == list(FIELDS)
    prediction = make(1)
    row = _row(prediction, datetime(2024, 5, 1, tzinfo=UTC), "history/x.jsonl")
    assert set(row) == set(FIELDS) - {"id", "stored_at"}  # the table gives those
    when = datetime(2024, 5, 1, tzinfo=UTC)
    document = record({**row, "id": 1, "predicted_at": when, "stored_at": when})  # as read back
    assert tuple(document) == FIELDS
    schema = openapi_document()["components"]["schemas"]["Prediction"]
    assert schema == records.schema_of(StoredPrediction) and schema["required"] == list(FIELDS)
    OAS30Validator(schema, format_checker=oas30_format_checker).validate(document)


def test_an_event_is_its_envelope_and_the_logs_extension_everywhere():
    from services.ingest.event_log import COLUMNS, LoggedEvent, envelope, event_log
    from shared.messages import EventEnvelope

    declared = records.names_of(EventEnvelope)
    assert [c.name for c in event_log.columns] == [*declared, "hook_id", "event_key", "published_at"]
    assert set(COLUMNS) == set(records.names_of(LoggedEvent)) - {"position", "published_at"}
    assert {"replay_id", "model_version", "only_tasks"}.isdisjoint(event_log.c.keys())  # the message's own

    class Row:
        position, delivery_id, hook_id, event, action = 7, "d-1", "h", "issues", "opened"
        repo, issue_number, sender, source = "o/r", 3, "s", "import"
        received_at, payload, published_at = datetime(2024, 5, 1), '{"a": 1}', None

    assert envelope(Row()) == EventEnvelope(
        position=7, delivery_id="d-1", event="issues", action="opened", repo="o/r", issue_number=3,
        sender="s", received_at="2024-05-01T00:00:00+00:00", payload={"a": 1}, source="import")


RUN = dict(run_id="r-1", revision=3, state="running", created_at="2024-05-01T00:00:00+00:00", created_by="me",
           filters={"repo": "o/r"}, model_version=None, tasks=["issuetype"], total=10, published=4,
           last_position=77)


def test_a_replay_run_is_its_declaration_in_both_tables_its_json_and_its_schema():
    from services.api.openapi import openapi_document
    from services.api.tables import api_replay_runs
    from services.ingest.replay_runs import StoredRun, replay_runs
    from shared.messages import ReplayRun
    from shared.replays import SHOWN_SCHEMA, STATES, run_of, shown, table_row

    declared = records.names_of(ReplayRun)
    assert declared[0] == "id" and "run_id" not in declared  # the message's run_id is the column id
    assert [c.name for c in api_replay_runs.columns] == list(declared)
    assert [c.name for c in replay_runs.columns] == [*declared, "reported"]
    assert records.names_of(StoredRun) == (*declared, "reported")
    for table in (replay_runs, api_replay_runs):
        assert [c.name for c in table.primary_key] == ["id"]
    assert {c.name: c.server_default.arg for c in replay_runs.columns if c.server_default is not None} == {
        "revision": "0", "total": "0", "published": "0", "last_position": "0", "reported": "0"}
    assert all(c.server_default is None for c in api_replay_runs.columns)

    run = ReplayRun(**RUN, finished_at="2024-05-01T02:00:00+00:00")
    row = table_row(run)
    assert set(row) == set(api_replay_runs.c.keys()) and row["id"] == "r-1"
    assert isinstance(row["created_at"], datetime)

    class Row:  # as the table hands it back (SQLite: naive UTC)
        def __init__(self, values):
            self.__dict__.update(values)

    assert run_of(Row({**row, "created_at": datetime(2024, 5, 1), "reported": 1})) == run

    document = shown(run)
    assert "revision" not in document and document["progress"] == 0.4 and document["id"] == "r-1"
    assert set(document) == set(SHOWN_SCHEMA["properties"]) == set(SHOWN_SCHEMA["required"])
    assert SHOWN_SCHEMA["properties"]["state"]["enum"] == list(STATES)
    assert openapi_document()["components"]["schemas"]["ReplayRun"] == SHOWN_SCHEMA
    OAS30Validator(SHOWN_SCHEMA, format_checker=oas30_format_checker).validate(document)


ACTION = dict(id=7, repo="o/r", number=3, task="issuetype", action="label", mode="live", target="",
              state="done", reason=None, delivery_id="d-1", model_version="m1", label="bug", confidence=0.9,
              rule=1, created_at="2024-05-01T00:00:00Z", updated_at="2024-05-01T00:01:00Z")


def test_an_action_is_its_declaration_in_both_tables_its_json_and_its_schema():
    from services.actions.tables import actions
    from services.api.action_view import _row
    from services.api.openapi import openapi_document
    from services.api.tables import KeptAction, api_actions
    from shared import actions as action_records
    from shared.messages import ActionRecord

    declared = records.names_of(ActionRecord)
    assert [c.name for c in actions.columns] == list(declared)
    assert [c.name for c in api_actions.columns] == [*declared, "revision"]
    assert records.names_of(KeptAction) == (*declared, "revision")
    assert actions.c.id.autoincrement is True and api_actions.c.id.autoincrement is False  # copied ids
    assert (action_records.KINDS, action_records.STATES, action_records.MODES) == tuple(
        records.spec_of(ActionRecord, name).enum for name in ("action", "state", "mode"))

    record = ActionRecord(**ACTION)
    records.check(record)
    row = _row(record)
    assert set(row) == set(api_actions.c.keys()) and row["revision"] == 1

    document = action_records.action_record(row)  # a mapping, as a SQLAlchemy Row's
    assert document == ACTION and action_records.report(row) == record
    schema = records.schema_of(ActionRecord)
    assert list(document) == schema["required"] == list(schema["properties"])
    assert openapi_document()["components"]["schemas"]["Action"] == schema
    OAS30Validator(schema, format_checker=oas30_format_checker).validate(document)
