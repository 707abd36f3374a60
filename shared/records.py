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
it means. What one table alone says of a column (a server default its migration gave it, a row id it
copies rather than generates) is said where that table is made (``table``).

A text or integer field may also be its table's primary key (``key=True``: the record's own key, given
by whoever makes the record), be known by another name in its table and JSON (``column=``: a message
field ``run_id`` that is the column ``id``), or be bookkeeping kept in rows and messages but not
shown (``shown=False``: no JSON value, no schema property).

What each kind of field is:

=========== ========================= ========================= ====================================
helper      value (message, JSON)     column                    checked (``check``)
=========== ========================= ========================= ====================================
text        str                       VARCHAR(n), TEXT if no n  length, enum
integer     int                       INTEGER, BIGINT past 2^31 range
number      float (an int is read as  FLOAT                     finite, range
            its float)
flag        bool                      BOOLEAN                   -
moment      ISO 8601 str              TIMESTAMP WITH TIME ZONE  - (its reader parses it)
mapping     {str: float}              JSON                      each value: finite, range
document    any JSON object           TEXT (the JSON text)      -
json_object any JSON object           JSON                      -
strings     [str]                     JSON                      - (the codec checks each is a str)
row_id      int, given by the table   BIGINT (SQLite INTEGER),  -
                                      primary key
=========== ========================= ========================= ====================================

Derived from a declaration: ``columns_of`` and ``table`` (its table), ``row_of`` (a record as the row
its table takes), ``json_of`` (a row as JSON values), ``message_of`` (a row as the record), ``check``
(the values' lengths, ranges, enums) and ``schema_of`` (the OpenAPI 3.0 schema of ``json_of``'s
output). Each is worked out once per class and kept. Rows and JSON are keyed by column name
(``names_of``); a record is built by its fields' names.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from shared.times import as_utc, iso, parse_time

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

    kind: str  # text, integer, number, flag, moment, mapping, document, json_object, strings, row_id
    max_length: int | None = None  # text
    min_length: int = 0  # text
    minimum: int | float | None = None  # integer, number, a mapping's values
    maximum: int | float | None = None
    enum: tuple[str, ...] | None = None  # text
    description: str | None = None  # in the schema
    example: Any = None  # in the schema
    column: str | None = None  # its name in the table and JSON, where not the field's
    key: bool = False  # the table's primary key (text, integer)
    shown: bool = True  # in the JSON and its schema


@dataclass(frozen=True)
class Field:
    """A declared field of one class: its name, spec, whether it may be null, its default."""

    name: str
    spec: Spec
    optional: bool
    default: Any  # dataclasses.MISSING where it has none

    @property
    def column(self) -> str:
        """Its name in the table and in JSON: the declared ``column``, else the field's."""
        return self.spec.column or self.name

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
         default: Any = dataclasses.MISSING, description: str | None = None, example: Any = None,
         column: str | None = None, key: bool = False, shown: bool = True) -> Any:
    """A string of ``min_length`` to ``max_length`` characters (no limit, a TEXT column: None), or one
    of ``enum``. ``column``, ``key``, ``shown``: see the module's docstring."""
    return _field(Spec("text", max_length=max_length, min_length=min_length, enum=enum,
                       description=description, example=example, column=column, key=key, shown=shown),
                  default)


def integer(*, minimum: int | None = None, maximum: int = INT64, default: Any = dataclasses.MISSING,
            description: str | None = None, example: Any = None, column: str | None = None,
            key: bool = False, shown: bool = True) -> Any:
    """A whole number from ``minimum`` to ``maximum``; a BIGINT column unless ``maximum`` fits 32 bits.
    ``column``, ``key``, ``shown``: see the module's docstring."""
    return _field(Spec("integer", minimum=minimum, maximum=maximum, description=description,
                       example=example, column=column, key=key, shown=shown), default)


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


def json_object(*, default: Any = dataclasses.MISSING, description: str | None = None) -> Any:
    """A JSON object, kept in a JSON column."""
    return _field(Spec("json_object", description=description), default)


def strings(*, default: Any = dataclasses.MISSING, description: str | None = None) -> Any:
    """A list of strings, kept in a JSON column."""
    return _field(Spec("strings", description=description), default)


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
    """The declared fields' column names, in ``fields_of`` order: a row's columns, and (less any not
    shown) a JSON record's keys."""
    return tuple(f.column for f in fields_of(cls))


def spec_of(cls: type, name: str) -> Spec:
    """One declared field's spec, by the field's name (``KeyError`` if it is not declared)."""
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

def columns_of(cls: type, *, server_defaults: Mapping[str, str] | None = None,
               generated_ids: bool = True) -> list[sa.Column]:
    """One SQLAlchemy column per declared field: its name, type and length, nullability, server
    default (the field's, else ``server_defaults``'), a ``key`` as primary key, and the row id as
    primary key, autoincrementing unless ``generated_ids`` is False."""
    extra = dict(server_defaults or {})
    unknown = set(extra) - set(names_of(cls))
    if unknown:
        raise KeyError(f"{cls.__name__} declares no column {', '.join(sorted(unknown))}")
    return [_column(f, extra.get(f.column), generated_ids) for f in fields_of(cls)]


def _column(f: Field, server_default: str | None, generated_ids: bool) -> sa.Column:
    spec = f.spec
    if spec.kind == "row_id":
        return sa.Column(f.column, ROW_ID, primary_key=True, autoincrement=generated_ids)
    return sa.Column(f.column, _sql_type(spec), nullable=f.optional, primary_key=spec.key,
                     autoincrement=False if spec.key else "auto",  # a key comes with the record
                     server_default=f.server_default if server_default is None else server_default)


def _sql_type(spec: Spec) -> Any:
    if spec.kind == "text":
        return sa.String(spec.max_length) if spec.max_length is not None else sa.Text()
    if spec.kind == "integer":
        return sa.Integer() if spec.maximum is not None and spec.maximum <= INT32 else sa.BigInteger()
    if spec.kind == "moment":
        return sa.DateTime(timezone=True)
    return {"number": sa.Float, "flag": sa.Boolean, "mapping": sa.JSON, "document": sa.Text,
            "json_object": sa.JSON, "strings": sa.JSON}[spec.kind]()


def table(name: str, metadata: sa.MetaData, cls: type, *constraints: Any,
          server_defaults: Mapping[str, str] | None = None, generated_ids: bool = True) -> sa.Table:
    """The table of a record class (its stored extension, usually): its columns, then the
    constraints and indexes given. What this table alone says of a column: ``server_defaults`` (by
    column name; ones its migrations gave it beyond the declaration's), and ``generated_ids=False``
    where each row's id comes with it (a read model of another table's records): no autoincrement."""
    columns = columns_of(cls, server_defaults=server_defaults, generated_ids=generated_ids)
    return sa.Table(name, metadata, *columns, *constraints)


# -- values ------------------------------------------------------------------------------------------
# The functions below run per message and per row on the hot path (the store's every prediction, the
# API's every item, the relay's every event). Each is compiled once per class from source written for
# that class's fields, as ``dataclasses`` compiles ``__init__``: one dict display or one call, no loop
# over fields, as fast as the same function written by hand.

def _floats(value: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in (value or {}).items()}


def _numbers(value: dict) -> dict[str, float]:
    return {k: float(v) for k, v in value.items()}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _object(value: Any) -> dict[str, Any]:
    return dict(value or {})


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value or ()]


_HELPERS = {"_floats": _floats, "_numbers": _numbers, "_dumps": _dumps, "_object": _object,
            "_strings": _strings, "loads": json.loads, "iso": iso, "as_utc": as_utc,
            "parse_time": parse_time, "isfinite": math.isfinite}

# Per kind, the expression of a value read by ``{}``: a record's value as its row holds it; a row's
# value as JSON; a row's value as the record holds it. A kind not named keeps its value as it is; a
# None is kept as None.
_TO_ROW = {"number": "float({})", "mapping": "_numbers({})", "document": "_dumps({})",
           "json_object": "dict({})", "strings": "list({})"}
_TO_TIMED_ROW = {**_TO_ROW, "moment": "parse_time({})"}
_TO_JSON = {"number": "float({})", "mapping": "_floats({})", "document": "loads({})", "flag": "bool({})",
            "moment": "iso({})", "json_object": "_object({})", "strings": "_strings({})"}
_TO_RECORD = {"moment": "as_utc({}).isoformat()", "document": "loads({})", "json_object": "_object({})",
              "strings": "_strings({})"}
_COMPILED: dict[tuple[str, type], Callable] = {}


def _converted(f: Field, expressions: dict[str, str], read: str) -> str:
    expression = expressions.get(f.spec.kind)
    if expression is None:
        return read
    if f.optional:
        return f"(None if (value := {read}) is None else {expression.format('value')})"
    return expression.format(read)


def _compile(record: type, what: str, source: str, **names: Any) -> Callable:
    """The function ``what`` defined by ``source``, compiled once per record class and kept."""
    derived = _COMPILED.get((what, record))
    if derived is None:
        namespace = {**_HELPERS, **names}
        exec(compile(source, f"<records.{what} of {record.__qualname__}>", "exec"), namespace)  # noqa: S102
        derived = _COMPILED[what, record] = namespace[what]
    return derived


def row_of(cls: type, *, times: bool = False) -> Callable[[Any], dict[str, Any]]:
    """A function from a record to its row, by column name: every declared field's value as the table
    takes it (a number as float, a document as JSON text; a moment as the record's ISO 8601 text, or
    with ``times`` as an aware datetime, ``TimeFormatError`` where it does not read: what SQLAlchemy's
    own SQLite types take)."""
    what, expressions = ("timed_row", _TO_TIMED_ROW) if times else ("row", _TO_ROW)
    items = ", ".join(f"{f.column!r}: {_converted(f, expressions, f'record.{f.name}')}"
                      for f in fields_of(cls))
    return _compile(cls, what, f"def {what}(record):\n    return {{{items}}}\n")


def json_of(cls: type) -> Callable[[Any], dict[str, Any]]:
    """A function from a row (a SQLAlchemy Row or a mapping; a field it lacks reads as None, which
    only a field that may be null can be) to its JSON values, by column name: every declared field
    shown, a moment as UTC ISO 8601 with a ``Z``, numbers as floats, a flag as bool, a document
    parsed."""
    items = ", ".join(f"{f.column!r}: {_converted(f, _TO_JSON, f'get({f.column!r})')}"
                      for f in fields_of(cls) if f.spec.shown)
    return _compile(cls, "json", "def json(row):\n"
                                 "    get = (row._mapping if hasattr(row, '_mapping') else row).get\n"
                                 f"    return {{{items}}}\n")


def message_of(cls: type[R]) -> Callable[[Any], R]:
    """A function from a row (anything with the fields as attributes, a SQLAlchemy Row) to the
    record: its declared fields read back (a moment as ISO 8601 with its UTC offset, a document
    parsed), its undeclared ones their defaults."""
    items = ", ".join(f"{f.name}={_converted(f, _TO_RECORD, f'row.{f.column}')}" for f in fields_of(cls))
    return _compile(cls, "message", f"def message(row):\n    return cls({items})\n", cls=cls)


# -- checks ------------------------------------------------------------------------------------------

def check(record: Any, error: type[Exception] = InvalidValue) -> None:
    """Raise ``error`` naming the first declared field whose value is outside its declaration:
    a text's length or enum, an integer's or number's range, a number that is not finite (a
    mapping's values likewise). Types are the codec's to check (``shared.messages``): a None passes
    where the annotation allows it, a bool is no number."""
    checks = _CHECKS.get(type(record))
    if checks is None:
        checks = _CHECKS[type(record)] = _checks_of(type(record))
    checks(record, error)


_CHECKS: dict[type, Callable[[Any, type[Exception]], None]] = {}


def _checks_of(cls: type) -> Callable[[Any, type[Exception]], None]:
    """``check`` for one class: each field's condition inline, its reason built only when it fails."""
    lines, names = ["def checks(record, error):"], {"_NUMBERS": (int, float)}
    for n, f in enumerate(fields_of(cls)):
        condition = f"value not in enum{n}" if f.spec.enum is not None else _refusal(f.spec, "value")
        if condition is None:
            continue
        names[f"reason{n}"] = _reason(f.name, f.spec)
        if f.spec.enum is not None:
            names[f"enum{n}"] = frozenset(f.spec.enum)
        lines.append(f"    value = record.{f.name}")
        indent = "    "
        if f.optional:
            lines.append("    if value is not None:")
            indent += "    "
        if f.spec.kind == "mapping":
            lines.append(f"{indent}for key, item in value.items():")
            lines.append(f"{indent}    if {_refusal(f.spec, 'item')}:")
            lines.append(f"{indent}        raise error(reason{n}(item, key))")
        else:
            lines.append(f"{indent}if {condition}:")
            lines.append(f"{indent}    raise error(reason{n}(value))")
    lines.append("    return None")
    return _compile(cls, "checks", "\n".join(lines) + "\n", **names)


def _refusal(spec: Spec, value: str) -> str | None:
    """The condition, on the expression ``value``, under which a value is refused; None: never."""
    if spec.kind == "text":
        high = "" if spec.max_length is None else f" <= {spec.max_length}"
        return f"not {spec.min_length} <= len({value}){high}"
    if spec.kind == "integer":
        low = -INT64 - 1 if spec.minimum is None else spec.minimum
        return f"not {low} <= {value} <= {spec.maximum}"
    if spec.kind in ("number", "mapping"):
        # a bound refuses NaN and the infinity past it; without both bounds, isfinite refuses them
        conditions = [] if None not in (spec.minimum, spec.maximum) else [f"isfinite({value})"]
        if spec.minimum is not None:
            conditions.append(f"{spec.minimum!r} <= {value}")
        if spec.maximum is not None:
            conditions.append(f"{value} <= {spec.maximum!r}")
        return f"{value}.__class__ not in _NUMBERS or not ({' and '.join(conditions)})"
    return None


def _reason(name: str, spec: Spec) -> Callable[..., str]:
    """The one-line reason a refused value of this field is given."""
    if spec.kind == "text" and spec.enum is not None:
        listed = " or ".join(spec.enum)
        return lambda value: f"{name} must be {listed}, not {value[:20]!r}"
    if spec.kind == "text":
        high = "" if spec.max_length is None else spec.max_length
        return lambda value: f"{name} must be {spec.min_length}-{high} characters, not {len(value)}"
    if spec.kind == "integer":
        return lambda value: f"{name} {value} is out of range"
    bounds = "[{}, {}]".format(*("" if bound is None else bound for bound in (spec.minimum, spec.maximum)))
    if spec.kind == "mapping":
        return lambda value, key: f"{name}[{str(key)[:40]!r}] must be a number in {bounds}, got {value!r:.40}"
    return lambda value: f"{name} must be a number in {bounds}, got {value!r:.40}"


# -- the schema --------------------------------------------------------------------------------------

def schema_of(cls: type) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of ``json_of``'s output: an object of every declared field shown, by
    column name, each required (null where the field is None), nothing else. A property states its
    type, format (a moment's ``date-time``), ``nullable``, enum, a number's bounds (a mapping's values'
    too), its description and example. A text's length and an integer's range are the table's limits:
    checked on the way in (``check``), not stated to readers."""
    fields = [f for f in fields_of(cls) if f.spec.shown]
    return {"type": "object", "additionalProperties": False, "required": [f.column for f in fields],
            "properties": {f.column: _property(f) for f in fields}}


def _property(f: Field) -> dict[str, Any]:
    spec = f.spec
    schema: dict[str, Any] = {
        "text": {"type": "string"}, "integer": {"type": "integer"}, "row_id": {"type": "integer"},
        "number": {"type": "number"}, "flag": {"type": "boolean"},
        "moment": {"type": "string", "format": "date-time"}, "document": {"type": "object"},
        "json_object": {"type": "object"}, "strings": {"type": "array", "items": {"type": "string"}},
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
