"""Records declared once: a frozen dataclass whose fields say how each value is stored, checked and
described, so a record's table columns, row values, JSON values, value checks and OpenAPI schema are
all derived from that one declaration.

A record field is declared with one of the helpers below; the annotation gives its Python type and,
with ``| None``, that it may be null (a nullable column, a ``nullable`` schema property):

    @dataclass(frozen=True)
    class Prediction:
        task: str = records.text(64)
        confidence: float = records.number(minimum=0, maximum=1)
        event: str | None = records.text(64, default=None)

A field declared without a helper is the message's own (no column, no JSON value, no check). The
columns only a table has (a row id, when a row was stored) are the record's *stored extension*: a
subclass declaring them, ``@dataclass(frozen=True, kw_only=True)``, whose fields come after the
record's. A stored field's default, where it is neither missing nor None, is also its column's server
default: a row written without it (one stored before the field existed) holds what a message without
it means.

What each kind of field is:

========== ========================= ========================= ====================================
helper     value (message, JSON)     column                    checked (``check``)
========== ========================= ========================= ====================================
text       str                       VARCHAR(n), TEXT if no n  length, enum
integer    int                       INTEGER, BIGINT past 2^31 range
number     float (an int is read as  FLOAT                     finite, range
           its float)
flag       bool                      BOOLEAN                   -
moment     ISO 8601 str              TIMESTAMP WITH TIME ZONE  - (its reader parses it)
mapping    {str: float}              JSON                      each value: finite, range
document   any JSON object           TEXT (the JSON text)      -
row_id     int, given by the table   BIGINT (SQLite INTEGER),  -
                                     primary key
========== ========================= ========================= ====================================

Every derivation is worked out once per class and cached.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from shared.times import as_utc, iso

INT32 = 2**31 - 1
INT64 = 2**63 - 1
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

_KEY = "record"  # where a field's Spec is kept in its metadata
R = TypeVar("R")


class InvalidValue(ValueError):
    """A record's value outside what its declaration allows."""


@dataclass(frozen=True)
class Spec:
    """What one declared field is, beyond its Python type."""

    kind: str  # text, integer, number, flag, moment, mapping, document, row_id
    max_length: int | None = None  # text
    min_length: int = 0  # text
    minimum: int | float | None = None  # integer, number, a mapping's values
    maximum: int | float | None = None
    enum: tuple[str, ...] | None = None  # text
    description: str | None = None  # in the schema
    example: Any = None  # in the schema


@dataclass(frozen=True)
class Field:
    """A declared field of one class: its name, spec, whether it may be null, its default."""

    name: str
    spec: Spec
    optional: bool
    default: Any  # dataclasses.MISSING where it has none

    @property
    def server_default(self) -> Any:
        """The column's server default: the field's default, unless it has none or it is None."""
        value = self.default
        if value is dataclasses.MISSING or value is None:
            return None
        if isinstance(value, bool):
            return sa.true() if value else sa.false()
        return str(value)


def _field(spec: Spec, default: Any) -> Any:
    return dataclasses.field(default=default, metadata={_KEY: spec})


# -- declaring ----------------------------------------------------------------------------------------

def text(max_length: int | None, *, min_length: int = 1, enum: tuple[str, ...] | None = None,
         default: Any = dataclasses.MISSING, description: str | None = None, example: Any = None) -> Any:
    """A string of ``min_length`` to ``max_length`` characters (no limit, a TEXT column: None), or one
    of ``enum``."""
    return _field(Spec("text", max_length=max_length, min_length=min_length, enum=enum,
                       description=description, example=example), default)


def integer(*, minimum: int | None = None, maximum: int = INT64, default: Any = dataclasses.MISSING,
            description: str | None = None, example: Any = None) -> Any:
    """A whole number from ``minimum`` to ``maximum``; a BIGINT column unless ``maximum`` fits 32 bits."""
    return _field(Spec("integer", minimum=minimum, maximum=maximum, description=description,
                       example=example), default)


def number(*, minimum: float | None = None, maximum: float | None = None, default: Any = dataclasses.MISSING,
           description: str | None = None, example: Any = None) -> Any:
    """A finite number from ``minimum`` to ``maximum`` (each bound stated in the schema)."""
    return _field(Spec("number", minimum=minimum, maximum=maximum, description=description,
                       example=example), default)


def flag(default: Any = dataclasses.MISSING, *, description: str | None = None) -> Any:
    """True or false."""
    return _field(Spec("flag", description=description), default)


def moment(*, default: Any = dataclasses.MISSING, description: str | None = None) -> Any:
    """A time: ISO 8601 text in messages and JSON, a time stamp with time zone in the table."""
    return _field(Spec("moment", description=description), default)


def mapping(*, minimum: float | None = None, maximum: float | None = None,
            default: Any = dataclasses.MISSING, description: str | None = None) -> Any:
    """Names to finite numbers from ``minimum`` to ``maximum``; a JSON column."""
    return _field(Spec("mapping", minimum=minimum, maximum=maximum, description=description), default)


def document(*, default: Any = dataclasses.MISSING, description: str | None = None) -> Any:
    """A JSON object, kept in the table as its JSON text."""
    return _field(Spec("document", description=description), default)


def row_id(*, description: str | None = None) -> Any:
    """The row's id, given by the table as the row is inserted: its primary key."""
    return _field(Spec("row_id", description=description), dataclasses.MISSING)


# -- reading a declaration ----------------------------------------------------------------------------

_DECLARED: dict[type, tuple[Field, ...]] = {}


def fields_of(cls: type) -> tuple[Field, ...]:
    """The declared fields of a record class: row ids first, then the others in declaration order
    (a stored extension's after its record's)."""
    found = _DECLARED.get(cls)
    if found is None:
        found = []
        for f in dataclasses.fields(cls):
            spec = f.metadata.get(_KEY)
            if spec is not None:
                found.append(Field(f.name, spec, _optional(f.type), f.default))
        found.sort(key=lambda field: field.spec.kind != "row_id")  # stable: otherwise as declared
        found = _DECLARED[cls] = tuple(found)
    return found


def names_of(cls: type) -> tuple[str, ...]:
    """The declared fields' names, in ``fields_of`` order: a row's columns, a JSON record's keys."""
    return tuple(f.name for f in fields_of(cls))


def spec_of(cls: type, name: str) -> Spec:
    """One declared field's spec (``KeyError`` if it is not declared)."""
    for f in fields_of(cls):
        if f.name == name:
            return f.spec
    raise KeyError(f"{cls.__name__} declares no record field {name!r}")


def _optional(annotation: Any) -> bool:
    """``X | None`` (a string under ``from __future__ import annotations``, else a type)."""
    if isinstance(annotation, str):
        return annotation.replace(" ", "").endswith("|None") or annotation.startswith("Optional[")
    return type(None) in getattr(annotation, "__args__", ())


# -- the table ---------------------------------------------------------------------------------------

def columns_of(cls: type) -> list[sa.Column]:
    """One SQLAlchemy column per declared field: type and length, nullability, server default, and
    the row id as autoincrementing primary key."""
    return [_column(f) for f in fields_of(cls)]


def _column(f: Field) -> sa.Column:
    spec = f.spec
    if spec.kind == "row_id":
        return sa.Column(f.name, ROW_ID, primary_key=True, autoincrement=True)
    return sa.Column(f.name, _sql_type(spec), nullable=f.optional, server_default=f.server_default)


def _sql_type(spec: Spec) -> Any:
    if spec.kind == "text":
        return sa.String(spec.max_length) if spec.max_length is not None else sa.Text()
    if spec.kind == "integer":
        return sa.Integer() if spec.maximum is not None and spec.maximum <= INT32 else sa.BigInteger()
    if spec.kind == "moment":
        return sa.DateTime(timezone=True)
    return {"number": sa.Float, "flag": sa.Boolean, "mapping": sa.JSON, "document": sa.Text}[spec.kind]()


def table(name: str, metadata: sa.MetaData, cls: type, *constraints: Any) -> sa.Table:
    """The table of a record class (its stored extension, usually): its columns, then the
    constraints and indexes given."""
    return sa.Table(name, metadata, *columns_of(cls), *constraints)


# -- values ------------------------------------------------------------------------------------------

def _float(value: Any) -> Any:
    return None if value is None else float(value)


def _floats(value: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in (value or {}).items()}


def _loads(value: Any) -> Any:
    return None if value is None else json.loads(value)


def _dumps(value: Any) -> Any:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _moment(value: Any) -> Any:
    return None if value is None else as_utc(value).isoformat()


def _bool(value: Any) -> bool:
    return bool(value)


# Per kind: (a value of the record -> its row value, a row value -> its JSON value,
#            a row value -> the record's value); None where the value is kept as it is.
_CONVERT: dict[str, tuple[Callable | None, Callable | None, Callable | None]] = {
    "text": (None, None, None), "integer": (None, None, None), "row_id": (None, None, None),
    "number": (_float, _float, None), "mapping": (_floats, _floats, None), "flag": (None, _bool, None),
    "moment": (None, iso, _moment), "document": (_dumps, _loads, _loads),
}
_COMPILED: dict[tuple[str, type], Callable] = {}


def _plan(cls: type, direction: int) -> tuple[tuple[str, ...], tuple[tuple[str, Callable], ...]]:
    names = names_of(cls)
    converters = tuple((f.name, convert) for f in fields_of(cls)
                       if (convert := _CONVERT[f.spec.kind][direction]) is not None)
    return names, converters


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple]:
    """The named attributes of an object, as a tuple (``attrgetter`` of one name returns it bare)."""
    get = operator.attrgetter(*names)
    return get if len(names) > 1 else lambda obj: (get(obj),)


def row_of(cls: type) -> Callable[[Any], dict[str, Any]]:
    """A function from a record to its row: every declared field's value as the table takes it (a
    number as float, a document as JSON text; a moment as the record's ISO 8601 text)."""
    derived = _COMPILED.get(("row", cls))
    if derived is None:
        names, converters = _plan(cls, 0)
        get = _getter(names)

        def derived(obj: Any) -> dict[str, Any]:
            out = dict(zip(names, get(obj), strict=True))
            for name, convert in converters:
                out[name] = convert(out[name])
            return out

        _COMPILED["row", cls] = derived
    return derived


def json_of(cls: type) -> Callable[[Any], dict[str, Any]]:
    """A function from a row (a SQLAlchemy Row or a mapping; a missing field reads as None) to its
    JSON values: every declared field, a moment as UTC ISO 8601 with a ``Z``, numbers as floats, a
    flag as bool, a document parsed."""
    derived = _COMPILED.get(("json", cls))
    if derived is None:
        names, converters = _plan(cls, 1)

        def derived(row: Any) -> dict[str, Any]:
            data: Mapping[str, Any] = row._mapping if hasattr(row, "_mapping") else row
            out = {name: data.get(name) for name in names}
            for name, convert in converters:
                out[name] = convert(out[name])
            return out

        _COMPILED["json", cls] = derived
    return derived


def message_of(cls: type[R]) -> Callable[[Any], R]:
    """A function from a row (anything with the fields as attributes, a SQLAlchemy Row) to the
    record: its declared fields read back (a moment as ISO 8601 with its UTC offset, a document
    parsed), its undeclared ones their defaults."""
    derived = _COMPILED.get(("message", cls))
    if derived is None:
        names, converters = _plan(cls, 2)
        get = _getter(names)

        def derived(row: Any) -> R:
            values = dict(zip(names, get(row), strict=True))
            for name, convert in converters:
                values[name] = convert(values[name])
            return cls(**values)

        _COMPILED["message", cls] = derived
    return derived


# -- checks ------------------------------------------------------------------------------------------

def check(record: Any, error: type[Exception] = InvalidValue) -> None:
    """Raise ``error`` naming the first declared field whose value is outside its declaration:
    a text's length or enum, an integer's or number's range, a number that is not finite. Types are
    the codec's to check (``shared.messages``); a None where the annotation allows it passes."""
    checks = _CHECKS.get(type(record))
    if checks is None:
        checks = _CHECKS[type(record)] = tuple(
            (f.name, f.optional, c) for f in fields_of(type(record)) if (c := _checker(f)) is not None)
    for name, optional, check_value in checks:
        value = getattr(record, name)
        if value is None and optional:
            continue
        reason = check_value(name, value)
        if reason is not None:
            raise error(reason)


_CHECKS: dict[type, tuple[tuple[str, bool, Callable[[str, Any], str | None]], ...]] = {}


def _checker(f: Field) -> Callable[[str, Any], str | None] | None:
    spec = f.spec
    if spec.kind == "text":
        return _text_checker(spec)
    if spec.kind == "integer":
        low = -INT64 - 1 if spec.minimum is None else spec.minimum
        high = spec.maximum
        return lambda name, value: None if low <= value <= high else f"{name} {value} is out of range"
    if spec.kind == "number":
        return _number_checker(spec)
    if spec.kind == "mapping":
        each = _number_checker(spec)

        def each_value(name: str, value: dict) -> str | None:
            for key, item in value.items():
                if (reason := each(f"{name}[{str(key)[:40]!r}]", item)) is not None:
                    return reason
            return None

        return each_value
    return None


def _text_checker(spec: Spec) -> Callable[[str, Any], str | None]:
    low, high, enum = spec.min_length, spec.max_length, spec.enum
    if enum is not None:
        allowed = frozenset(enum)
        listed = " or ".join(enum)
        return lambda name, value: (None if value in allowed
                                    else f"{name} must be {listed}, not {value[:20]!r}")
    if high is None:
        return lambda name, value: None if low <= len(value) else f"{name} must have {low}+ characters"
    return lambda name, value: (None if low <= len(value) <= high
                                else f"{name} must be {low}-{high} characters, not {len(value)}")


def _number_checker(spec: Spec) -> Callable[[str, Any], str | None]:
    low = -math.inf if spec.minimum is None else spec.minimum
    high = math.inf if spec.maximum is None else spec.maximum
    bounds = "[{}, {}]".format(*("" if bound is None else bound for bound in (spec.minimum, spec.maximum)))

    def number_in_range(name: str, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not low <= value <= high:
            return f"{name} must be a number in {bounds}, got {value!r:.40}"
        return None

    return number_in_range


# -- the schema --------------------------------------------------------------------------------------

def schema_of(cls: type) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of ``json_of``'s output: an object of every declared field, each
    required (null where the field is None), nothing else. A property states its type, format (a
    moment's ``date-time``), ``nullable``, enum, a number's bounds (a mapping's values' too), its
    description and example. A text's length and an integer's range are the table's limits: checked
    on the way in (``check``), not stated to readers."""
    fields = fields_of(cls)
    return {"type": "object", "additionalProperties": False, "required": [f.name for f in fields],
            "properties": {f.name: _property(f) for f in fields}}


def _property(f: Field) -> dict[str, Any]:
    spec = f.spec
    schema: dict[str, Any] = {
        "text": {"type": "string"}, "integer": {"type": "integer"}, "row_id": {"type": "integer"},
        "number": {"type": "number"}, "flag": {"type": "boolean"},
        "moment": {"type": "string", "format": "date-time"}, "document": {"type": "object"},
        "mapping": {"type": "object", "additionalProperties": _bounded({"type": "number"}, spec)},
    }[spec.kind]
    if spec.kind == "number":
        schema = _bounded(schema, spec)
    if spec.enum is not None:
        schema["enum"] = list(spec.enum)
    if f.optional:
        schema["nullable"] = True
    if spec.example is not None:
        schema["example"] = spec.example
    if spec.description is not None:
        schema["description"] = spec.description
    return schema


def _bounded(schema: dict[str, Any], spec: Spec) -> dict[str, Any]:
    bounds = {k: v for k, v in (("minimum", spec.minimum), ("maximum", spec.maximum)) if v is not None}
    return {**schema, **bounds}
