"""The message contract: one frozen dataclass per message, versioned JSON both ways.

Every message carries ``{"v": 1, "kind": ...}``; ``decode`` refuses anything else
with ``MessageError`` so a consumer can dead-letter it with a one-line reason.

``EventEnvelope``, ``Prediction``, ``ReplayRun``, ``ActionRecord`` and ``FollowReport`` are also records
kept in tables: their fields are declared with ``shared.records`` helpers, the one place each field's
column, value checks, JSON value and schema come from (their stored-only columns:
``services.ingest.event_log.LoggedEvent``, ``shared.predictions.StoredPrediction``,
``services.ingest.replay_runs.StoredRun``, ``services.api.tables.KeptAction``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared import records
from shared.topology import (  # the exchanges, named in the system's declaration
    CONTROL_EXCHANGE,
    DEAD_EXCHANGE,
    EVENTS_EXCHANGE,
    RESULTS_EXCHANGE,
    TASKS_EXCHANGE,
)

SCHEMA_VERSION = 1


class MessageError(ValueError):
    """A message body does not match the contract."""


@dataclass(frozen=True)
class EventEnvelope:
    """One GitHub webhook delivery as committed to the event log. Its declared fields are the event
    log's columns too (``services.ingest.event_log``); the replay's are the message's own."""

    kind = "event"
    position: int = records.row_id()  # its place in the event log, given as it is logged
    delivery_id: str = records.text(64)
    event: str = records.text(64)
    action: str | None = records.text(64)
    repo: str | None = records.text(255)
    issue_number: int | None = records.integer(minimum=0, maximum=records.INT32)
    sender: str | None = records.text(255)
    received_at: str = records.moment()
    payload: dict[str, Any] = records.document()
    replay_id: str | None = None
    model_version: str | None = None
    only_tasks: list[str] | None = None  # a replay restricted to some tasks
    # live (a webhook) or import (GitHub history); a replay says so by its replay_id
    source: str = records.text(16, enum=("live", "import"), default="live")

    @property
    def routing_key(self) -> str:
        """Live events on ``github.…``; imported history on ``import.…`` and replays on ``replay.…``, so
        anything meant for live events only (acting on GitHub) binds ``github.#`` and never sees them."""
        prefix = "replay" if self.replay_id else "import" if self.source == "import" else "github"
        return f"{prefix}.{self.event}.{self.action or 'none'}"


@dataclass(frozen=True)
class IssueSnapshot:
    kind = "issue"
    repo: str
    number: int
    url: str
    title: str
    body: str
    author: str | None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskMessage:
    """Ask the predictor of ``task`` to score one issue snapshot."""

    kind = "task"
    task: str
    delivery_id: str
    position: int
    event: str
    action: str | None
    issue: IssueSnapshot
    replay_id: str | None = None
    model_version: str | None = None
    source: str = "live"  # carried on from the event

    @property
    def task_id(self) -> str:
        """Deterministic: the same event routed twice yields the same id."""
        return f"{self.delivery_id}:{self.task}"


@dataclass(frozen=True)
class Prediction:
    """One issue scored by one model. Its fields are also the stored prediction's (its table, its
    JSON in the API and S3 documents, their schema: ``shared.predictions``)."""

    kind = "prediction"
    task: str = records.text(64)
    model_version: str = records.text(64)
    delivery_id: str = records.text(64, description="X-GitHub-Delivery of the triggering event.")
    position: int = records.integer(minimum=0, description="The triggering event's event-log position.")
    repo: str = records.text(255, example="webcompat/web-bugs")
    number: int = records.integer(minimum=1, maximum=records.INT32)
    label: str = records.text(64)
    confidence: float = records.number(minimum=0, maximum=1)
    probabilities: dict[str, float] = records.mapping(minimum=0, maximum=1)
    predicted_at: str = records.moment()
    event: str | None = records.text(64, default=None, example="issues")
    action: str | None = records.text(64, default=None, example="opened")
    replay_id: str | None = records.text(
        64, default=None, description="The replay run that first produced it; null for a webhook's.")
    # A replay scored by the live model (none forced): what the live pipeline would have stored, so its
    # rows are the live record (a replay that fills gaps). A forced model's rows stand beside it.
    fills_live: bool = records.flag(False, description=(
        "A replay's prediction made by the live model: it fills a gap, so it is part of the live record "
        "(`replay=none` lists it with the webhooks' own)."))
    # carried on from the event: only live results may act on GitHub
    source: str = records.text(16, enum=("live", "import"), default="live", description=(
        "Where the triggering event came from: a webhook, or imported history."))
    # From the bundle's calibration (services/predictor/calibration.py); None where it measured none:
    probability: float | None = records.number(minimum=0, maximum=1, default=None, description=(
        "The calibrated probability that `label` is right (null: the model measured no calibration)."))
    precision: float | None = records.number(minimum=0, maximum=1, default=None, description=(
        "The precision the model's training measured among its predictions at least this confident, on "
        "issues it was not trained on (of repositories it was trained on, or of none, as this issue's "
        "is), as the lower end of its 95% interval: what `min_precision` in an actions policy reads."))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.delivery_id, self.task, self.model_version)


@dataclass(frozen=True)
class ReplayRequest:
    """Ask the replay source to republish a slice of the event log as run ``run_id``."""

    kind = "replay-request"
    run_id: str
    filters: dict[str, Any]
    tasks: list[str]
    model_version: str | None
    created_by: str
    requested_at: str


@dataclass(frozen=True)
class ScoreRequest:
    """Ask ingest to fetch one issue and its events from GitHub now, so it is scored within seconds."""

    kind = "score-request"
    request_id: str
    repo: str
    number: int
    requested_by: str
    requested_at: str


Message = EventEnvelope | TaskMessage | Prediction | ReplayRequest | ScoreRequest
M = TypeVar("M", EventEnvelope, TaskMessage, Prediction, ReplayRequest, ScoreRequest)
_KINDS = {cls.kind: cls for cls in (EventEnvelope, TaskMessage, Prediction, ReplayRequest, ScoreRequest)}
CONTROL_KEYS = {ReplayRequest: "replay", ScoreRequest: "score"}  # routing keys on wcml.control


def _plain(obj) -> dict[str, Any]:
    """Shallow field dict (dataclasses.asdict deep-copies every value: slow on the hot path)."""
    return {name: getattr(obj, name) for name in _fields(type(obj)).names}


def to_dict(message: Message) -> dict[str, Any]:
    data = _plain(message)
    if isinstance(message, TaskMessage):
        data["issue"] = _plain(message.issue)
    return {"v": SCHEMA_VERSION, "kind": message.kind, **data}


def encode(message: Message) -> bytes:
    return json.dumps(to_dict(message), separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class _Fields:
    """What ``_build`` checks of one message class, worked out once (``dataclasses.fields`` and the
    string annotations, per message, were a tenth of the store's time in a replay)."""

    names: tuple[str, ...]
    known: frozenset[str]
    required: tuple[str, ...]  # in field order, as a missing-field reason names them
    checks: tuple[tuple[str, bool, Any, str], ...]  # (name, optional, expected type(s), annotation)


_SPECS: dict[type, _Fields] = {}


def _fields(cls: type) -> _Fields:
    spec = _SPECS.get(cls)
    if spec is None:
        fields = dataclasses.fields(cls)
        checks = []
        for f in fields:
            annotation = str(f.type)
            base = annotation.removesuffix(" | None")
            checks.append((f.name, base != annotation, _TYPES[base], base))
        names = tuple(f.name for f in fields)
        spec = _SPECS[cls] = _Fields(
            names, frozenset(names),
            tuple(f.name for f in fields if f.default is dataclasses.MISSING
                  and f.default_factory is dataclasses.MISSING),
            tuple(checks))
    return spec


def _build(cls: type, data: dict[str, Any]):
    spec = _fields(cls)
    if not spec.known.issuperset(data):
        # names come from the sender: quoted and cut, so a reason stays one printable line
        named = ", ".join(repr(name)[:60] for name in sorted(set(data) - spec.known)[:5])
        raise MessageError(f"{cls.kind}: unknown field(s) {named}")
    missing = [name for name in spec.required if name not in data]
    if missing:
        raise MessageError(f"{cls.kind}: missing field(s) {', '.join(missing)}")
    if cls is TaskMessage:
        issue = data.get("issue")
        if not isinstance(issue, dict):
            raise MessageError("task: issue must be an object")
        issue = dict(issue)
        issue["labels"] = tuple(issue.get("labels") or ())
        data = {**data, "issue": _build(IssueSnapshot, issue)}
    try:
        message = cls(**data)
    except TypeError as exc:
        raise MessageError(f"{cls.kind}: {exc}") from None
    _check_types(message)
    return message


_TYPES = {"int": int, "str": str, "float": (int, float), "bool": bool, "dict[str, Any]": dict,
          "dict[str, float]": dict, "list[str]": list, "tuple[str, ...]": tuple,
          "IssueSnapshot": IssueSnapshot}


def _check_types(message) -> None:
    """Structural checks on every field (annotations are strings under ``from __future__``)."""
    for name, optional, expected, annotation in _fields(type(message)).checks:
        value = getattr(message, name)
        if value is None and optional:
            continue
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise MessageError(f"{message.kind}: field {name} has type {type(value).__name__}")
        if annotation in ("list[str]", "tuple[str, ...]") and not all(isinstance(v, str) for v in value):
            raise MessageError(f"{message.kind}: field {name} must hold strings")
        if annotation == "dict[str, float]" and not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
            raise MessageError(f"{message.kind}: field {name} must map names to numbers")


def decode(body: bytes, expected: type[M]) -> M:
    """Parse and validate one message of the expected kind."""
    return _checked(_parsed(body), expected)


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"body is not JSON: {exc.__class__.__name__}") from None


def _checked(data: Any, expected: type[M]) -> M:
    """A parsed body as one message of the expected kind."""
    if not isinstance(data, dict):
        raise MessageError("body is not a JSON object")
    if data.get("v") != SCHEMA_VERSION:
        raise MessageError(f"unsupported schema version {data.get('v')!r}")
    kind = data.get("kind")
    if kind != expected.kind:
        raise MessageError(f"expected a {expected.kind} message, got {kind!r}")
    fields = {k: v for k, v in data.items() if k not in ("v", "kind")}
    return _build(_KINDS[kind], fields)


# -- batches -------------------------------------------------------------------------------------
# One AMQP message may carry several messages of one kind, ``{"v": 1, "kind": "batch", "of": <kind>,
# "items": [<fields>, ...]}``: a replay's task messages for one task, a predictor's results. Each costs
# the broker one publish, confirm, delivery and ack, not one per item; a replay of history is
# otherwise bound by them (docs/benchmarks.md). Consumers read both forms with ``decode_each``.

BATCH_KIND = "batch"


def encode_batch(messages: Sequence[Message]) -> bytes:
    """Several messages of one kind as one body (one message: its plain form)."""
    if len(messages) == 1:
        return encode(messages[0])
    kinds = {m.kind for m in messages}
    if len(kinds) != 1:
        raise ValueError(f"a batch holds messages of one kind, not {sorted(kinds)}")
    items = [{k: v for k, v in to_dict(m).items() if k not in ("v", "kind")} for m in messages]
    return json.dumps({"v": SCHEMA_VERSION, "kind": BATCH_KIND, "of": kinds.pop(), "items": items},
                      separators=(",", ":"), sort_keys=True).encode()


def split_batch(body: bytes) -> tuple[bytes, bytes] | None:
    """A batch body's items as two bodies, halves in order (a half of one item is that item's plain
    message); None for anything else. What a consumer that failed on a whole batch tries next, so an
    item it cannot handle is set aside alone, never with its neighbours."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not (isinstance(data, dict) and data.get("kind") == BATCH_KIND and data.get("v") == SCHEMA_VERSION):
        return None
    items, kind = data.get("items"), data.get("of")
    if not isinstance(items, list) or len(items) < 2 or not isinstance(kind, str):
        return None
    middle = len(items) // 2
    return _items_body(kind, items[:middle]), _items_body(kind, items[middle:])


def _items_body(kind: str, items: list[Any]) -> bytes:
    if len(items) == 1 and isinstance(items[0], dict):
        data = {"v": SCHEMA_VERSION, "kind": kind, **items[0]}
    else:
        data = {"v": SCHEMA_VERSION, "kind": BATCH_KIND, "of": kind, "items": items}
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def batch_message_id(first: str, count: int) -> str:
    """A body's message id: its first message's, and ``+n`` for a batch's n others."""
    return first if count == 1 else f"{first}+{count - 1}"


@dataclass(frozen=True)
class Decoded(Generic[M]):
    """One message read from a body: ``message``, or ``error``. ``alone`` is the message by itself (what
    a dead letter keeps, so one bad item of a batch is set aside without its neighbours)."""

    body: bytes  # the body it was read from; for an item refused while decoding, that item alone
    message: M | None = None
    error: str | None = None
    batched: bool = False  # an item of a batch, read well

    @property
    def alone(self) -> bytes:
        return encode(self.message) if self.batched else self.body


def decode_each(body: bytes, expected: type[M]) -> list[Decoded[M]]:
    """The messages of ``expected``'s kind in a body: one plain message, or a batch's items."""
    try:  # parsed once: a plain message is checked from the same parse (the live path's every message)
        data = _parsed(body)
        batch = isinstance(data, dict) and data.get("kind") == BATCH_KIND and data.get("v") == SCHEMA_VERSION
        if not batch:
            return [Decoded(body, _checked(data, expected))]
    except MessageError as exc:
        return [Decoded(body, error=str(exc))]
    items, kind = data.get("items"), data.get("of")
    if kind != expected.kind or not isinstance(items, list) or not items:
        return [Decoded(body, error=f"expected a batch of {expected.kind} messages, got one of {kind!r} "
                                    f"with {len(items) if isinstance(items, list) else 'no'} items")]
    out = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise MessageError(f"{expected.kind}: a batch item is not a JSON object")
            out.append(Decoded(body, _build(expected, item), batched=True))
        except MessageError as exc:
            alone = json.dumps({"v": SCHEMA_VERSION, "kind": expected.kind, **item} if isinstance(item, dict)
                               else item, separators=(",", ":"), sort_keys=True).encode()
            out.append(Decoded(alone, error=str(exc)))
    return out


def replace(message: M, **changes) -> M:
    return dataclasses.replace(message, **changes)


__all__ = [
    "CONTROL_EXCHANGE", "DEAD_EXCHANGE", "EVENTS_EXCHANGE", "RESULTS_EXCHANGE", "TASKS_EXCHANGE",
    "Decoded", "EventEnvelope", "IssueSnapshot", "Message", "MessageError", "Prediction", "ReplayRequest",
    "TaskMessage", "batch_message_id", "decode", "decode_each", "encode", "encode_batch", "replace",
    "split_batch", "to_dict",
]


# -- state reports: what a service that owns a record tells whoever shows it ----------------------
# On ``wcml.state``, keyed as ``STATE_KEYS`` says. Each report is the whole record as it stands; a
# reader keeps the newest by the record's monotonic field (a run's ``revision``, an action's state:
# pending, then settled), so reports may arrive late, twice or out of order.

from shared.topology import STATE_EXCHANGE  # noqa: E402 - beside the records it carries


@dataclass(frozen=True)
class ReplayRun:
    """A replay run as the replay source records it (``shared.replays``), one ``revision`` per change.
    Its declared fields are the columns of the replay source's ``replay_runs`` and the API's
    ``api_replay_runs``, and (all but ``revision``) the run the API shows (``shared.replays.shown``)."""

    kind = "replay-run"
    run_id: str = records.text(64, column="id", key=True)  # its tables' and its JSON's "id"
    # higher is newer; 0 is the asker's own record of a run it requested
    revision: int = records.integer(minimum=0, shown=False)
    # requested: asked for, not yet taken (shared.replays.STATES)
    state: str = records.text(16, enum=("requested", "running", "paused", "done", "failed"))
    created_at: str = records.moment()
    created_by: str = records.text(255)
    filters: dict[str, Any] = records.json_object(  # shared.replays.LogFilter, its JSON form
        description="The slice of the event log replayed.")
    model_version: str | None = records.text(
        64, description="Model the replay asked for; null means each task's default.")
    tasks: list[str] = records.strings()
    total: int = records.integer(minimum=0, maximum=records.INT32, description="Events the run will publish.")
    published: int = records.integer(minimum=0, maximum=records.INT32, description="Events published so far.")
    last_position: int = records.integer(minimum=0, description="Event-log position reached.")
    finished_at: str | None = records.moment(default=None)
    error: str | None = records.text(None, default=None)


@dataclass(frozen=True)
class ActionRecord:
    """An action on GitHub as the actions service records it (``shared.actions``): the record's
    ``id`` and every field ``GET /api/v1/actions`` shows. Its declared fields are the columns of the
    actions service's ``actions`` and the API's ``api_actions``, and the action the API shows."""

    kind = "action"
    id: int = records.row_id()
    repo: str = records.text(255)
    number: int = records.integer(minimum=1, maximum=records.INT32)
    task: str = records.text(64)
    action: str = records.text(16, enum=("label", "milestone", "comment", "close"))  # shared.actions.KINDS
    mode: str = records.text(16, enum=("dry-run", "live"))
    # labels (comma-separated), a milestone title, the comment's text; "" to close
    target: str = records.text(None, min_length=0, description=(
        "Labels (comma-separated), milestone title, comment."))
    state: str = records.text(16, enum=("dry-run", "pending", "done", "skipped", "failed"))
    reason: str | None = records.text(None, min_length=0, description="What was done or why not.")
    delivery_id: str = records.text(255, description="The event whose prediction asked for it.")
    model_version: str = records.text(64)
    label: str = records.text(64)
    confidence: float = records.number(minimum=0, maximum=1)
    rule: int = records.integer(minimum=1, maximum=records.INT32,
                                description="The policy rule, counted from 1.")
    created_at: str = records.moment()
    updated_at: str = records.moment()


@dataclass(frozen=True)
class FollowReport:
    """Where a GitHub follower stands in one repository (ingest's ``github_follows``), reported after
    each of its ticks: the API keeps the newest of each repository (``api_follows``) and the dashboard
    shows its lag, the time since ``synced_at``."""

    kind = "follow"
    repo: str = records.text(255, key=True)
    cursor: str | None = records.text(32, description="GitHub's time the next tick asks for changes since.")
    synced_at: str | None = records.moment(
        description="When the last finished tick began: every change GitHub made before it is in the log.")
    ticks: int = records.integer(minimum=0, maximum=records.INT32)
    appended: int = records.integer(minimum=0, maximum=records.INT32, description="Events it logged.")
    reported_at: str = records.moment()


STATE_KEYS = {ReplayRun: "replay-run", ActionRecord: "action", FollowReport: "follow"}  # keys on wcml.state
_KINDS.update({cls.kind: cls for cls in STATE_KEYS})
__all__ += ["STATE_EXCHANGE", "STATE_KEYS", "ActionRecord", "FollowReport", "ReplayRun"]
