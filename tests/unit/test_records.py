"""Records declared once (shared/records.py): what each field helper derives, and that the pipeline's
records (Prediction, EventEnvelope) derive their table, row, JSON and schema from their declaration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from sqlalchemy.dialects import postgresql, sqlite

from shared import records


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
    assert [c.name for c in event_log.columns] == [*declared, "hook_id", "published_at"]
    assert set(COLUMNS) == set(records.names_of(LoggedEvent)) - {"position", "published_at"}
    assert {"replay_id", "model_version", "only_tasks"}.isdisjoint(event_log.c.keys())  # the message's own

    class Row:
        position, delivery_id, hook_id, event, action = 7, "d-1", "h", "issues", "opened"
        repo, issue_number, sender, source = "o/r", 3, "s", "import"
        received_at, payload, published_at = datetime(2024, 5, 1), '{"a": 1}', None

    assert envelope(Row()) == EventEnvelope(
        position=7, delivery_id="d-1", event="issues", action="opened", repo="o/r", issue_number=3,
        sender="s", received_at="2024-05-01T00:00:00+00:00", payload={"a": 1}, source="import")
