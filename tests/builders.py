"""Builders of test data several test modules share: stored predictions, replay runs, API keys.

Test modules import these from here, never from one another.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.store.writer import PredictionWriter
from shared.blobs import FileBlobStore
from shared.broker.port import Delivery
from shared.messages import STATE_EXCHANGE, STATE_KEYS, Prediction, ReplayRun, encode

KEYS = ("first-key-0123456789", "second-key-9876543210")
AUTH = {"Authorization": f"Bearer {KEYS[0]}"}
REPOS = ("webcompat/web-bugs", "mozilla/webcompat-reporter")


def make(i: int, **changes) -> Prediction:
    """A varied, deterministic prediction number ``i``."""
    task = ("needsdiagnosis", "issuetype")[i % 2]
    labels = {"needsdiagnosis": ("needsdiagnosis", "invalid"), "issuetype": ("bug", "feature", "question")}
    label = labels[task][(i // 2) % len(labels[task])]
    values = dict(task=task, model_version=("m1", "m2")[(i // 3) % 2], delivery_id=f"d-{i}",
                  position=i, repo=REPOS[i % 5 == 0], number=1 + i % 4, label=label,
                  confidence=round(0.3 + (i % 8) / 10, 2), probabilities={label: 0.5},
                  predicted_at=f"2024-05-{1 + i % 6:02d}T{i % 24:02d}:30:00Z", event="issues",
                  action="opened", replay_id=("r-1" if i % 7 == 3 else "r-2" if i % 7 == 6 else None),
                  # calibrated (a bundle that measured it) or not (one from before calibration)
                  probability=None if i % 3 == 0 else round(0.4 + (i % 5) / 10, 2),
                  precision=None if i % 3 == 0 else round(0.6 + (i % 4) / 10, 2))
    values.update(changes)
    return Prediction(**values)


def api_app(engine, keys=KEYS, broker=None, models_dir=None, rate_limit=None):
    """The query API as ``wcml api`` serves it; a replay it is asked for goes to ``broker`` (default: the
    embedded mode's in-process broker, with the topology declared). It knows the packaged rules' tasks
    and the bundles under ``models_dir`` (None: none readable, as in the API's Kubernetes pod). Each key
    gets ``rate_limit`` (None: no limit, where ``wcml api`` has WCML_API_RATE's)."""
    from services.api.routes import create_app
    from services.api.service import control_messages_to
    from shared import topology
    from shared.broker.memory import MemoryBroker
    from shared.known import Known

    if broker is None:
        broker = MemoryBroker()
        topology.declare(broker)
    return create_app(engine, keys, control_messages_to(broker), Known.read(None, models_dir), rate_limit)


def store(engine, tmp_path, messages) -> None:
    """Store ``messages`` as the store's consumer does (rows, and documents under tmp_path/blobs)."""
    deliveries = [Delivery(encode(m), m.task, "wcml.results", {}, False, n) for n, m in enumerate(messages)]
    assert PredictionWriter(engine, FileBlobStore(tmp_path / "blobs")).handle(deliveries) == []


def add_run(engine, run_id: str, **values) -> ReplayRun:
    """A replay run as the replay source reports it (a ``ReplayRun`` message), kept by the API's read
    model as its consumer of ``runs.api`` keeps it. Times may be given as datetimes."""
    from services.api import run_view

    fields = dict(revision=1, created_at=datetime(2024, 6, 1, tzinfo=UTC), created_by="tester",
                  filters={"repo": REPOS[0]}, model_version="m2", tasks=["needsdiagnosis"], state="running",
                  total=10, published=4, last_position=40, finished_at=None, error=None)
    fields.update(values)
    for name in ("created_at", "finished_at"):
        if isinstance(fields[name], datetime):
            fields[name] = fields[name].isoformat()
    run = ReplayRun(run_id=run_id, **fields)
    report = Delivery(encode(run), STATE_KEYS[ReplayRun], STATE_EXCHANGE, {}, False, 0)
    assert run_view.handle(engine, [report]) == []
    return run


def consume_until(broker, queue: str, handler, expected: int, options=None, timeout: float = 10) -> list:
    """Run ``broker.consume`` on ``queue`` until ``handler`` has seen ``expected`` deliveries; return them."""
    import threading

    from shared.broker import ConsumeOptions

    options = options or ConsumeOptions(max_batch=10, max_wait=0.01)
    stop, seen = threading.Event(), []

    def wrapped(batch):
        seen.extend(batch)
        if len(seen) >= expected:
            stop.set()  # the batch in hand is still settled (a handler that raises included)
        return handler(batch)

    consumer = threading.Thread(target=broker.consume, args=(queue, wrapped, stop, options))
    consumer.start()
    consumer.join(timeout)
    assert not consumer.is_alive(), f"{queue}: {len(seen)} of {expected} deliveries seen"
    return seen
