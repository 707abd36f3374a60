"""The results consumer against real PostgreSQL and S3 (SQLite and files for the embedded mode)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.store.documents import history_lines, latest_key, legacy_history_key, read_history
from services.store.latest import LatestDocuments
from services.store.tables import latest_due
from services.store.validation import check
from services.store.writer import PredictionWriter, repair
from shared.blobs import FileBlobStore, open_blob_store
from shared.broker.port import Delivery
from shared.database import create_engine
from shared.errors import is_transient
from shared.messages import Prediction, encode, encode_batch, replace, to_dict
from shared.predictions import predictions, record
from tests.plans import explain, nodes

REPO = "webcompat/web-bugs"


def prediction(**changes) -> Prediction:
    base = Prediction(task="needsdiagnosis", model_version="2024.05.01", delivery_id="d-1", position=1,
                      repo=REPO, number=101, label="needsdiagnosis", confidence=0.8,
                      probabilities={"needsdiagnosis": 0.8, "invalid": 0.2},
                      predicted_at="2024-05-01T10:00:00Z", event="issues", action="opened",
                      probability=0.86, precision=0.91)
    return replace(base, **changes)


def delivery(message: Prediction | bytes | dict, tag: int = 1) -> Delivery:
    if isinstance(message, Prediction):
        body = encode(message)
    elif isinstance(message, dict):
        body = json.dumps(message).encode()
    else:
        body = message
    return Delivery(body=body, routing_key="needsdiagnosis", exchange="wcml.results", headers={},
                    redelivered=False, tag=tag)


def rows(engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(predictions).order_by(predictions.c.id)))


def hkey(engine, p: Prediction) -> str:
    """The history object the row of ``p`` is in."""
    with engine.connect() as conn:
        return conn.execute(sa.select(predictions.c.blob_key).where(
            predictions.c.delivery_id == p.delivery_id, predictions.c.task == p.task,
            predictions.c.model_version == p.model_version)).scalar_one()


def history(engine, blobs, p: Prediction) -> dict:
    """The history document of ``p``: its line in its batch's object."""
    [doc] = [d for d in read_history(blobs.get(hkey(engine, p))) if d["delivery_id"] == p.delivery_id
             and d["model_version"] == p.model_version]
    return doc


@pytest.fixture
def engine(pg_engine):
    return pg_engine


@pytest.fixture
def blobs(s3_url):
    return open_blob_store(s3_url)


def store(engine, blobs) -> PredictionWriter:
    """The consumer, with the latest-documents follower run to the end after each batch."""
    return PredictionWriter(engine, blobs, on_due=LatestDocuments(engine, blobs).drain)


@pytest.fixture
def writer(engine, blobs) -> PredictionWriter:
    return store(engine, blobs)


def test_redelivered_batch_keeps_one_row_and_one_document(writer, engine, blobs):
    a, b = prediction(), prediction(delivery_id="d-2", position=2, number=102)
    assert writer.handle([delivery(a), delivery(b), delivery(a)]) == []
    assert writer.handle([delivery(a), delivery(b)]) == []
    stored = rows(engine)
    assert [(r.delivery_id, r.number) for r in stored] == [("d-1", 101), ("d-2", 102)]
    [key] = blobs.keys("history/")  # one object for the batch, JSON lines in id order
    assert stored[0].blob_key == stored[1].blob_key == key and key.endswith(".jsonl")
    assert [d["delivery_id"] for d in read_history(blobs.get(key))] == ["d-1", "d-2"]
    assert blobs.keys(f"needsdiagnosis/{REPO}/") == [latest_key("needsdiagnosis", REPO, 101),
                                                      latest_key("needsdiagnosis", REPO, 102)]


def test_documents_carry_the_prediction_and_when_it_was_stored(writer, blobs, s3_url, s3_endpoint):
    p = prediction()
    writer.handle([delivery(p)])
    doc = history(writer.engine, blobs, p)
    expected = {k: v for k, v in to_dict(p).items() if k not in ("v", "kind", "predicted_at")}
    assert {k: doc[k] for k in expected} == expected
    assert doc["predicted_at"] == "2024-05-01T10:00:00Z"
    assert datetime.fromisoformat(doc["stored_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert blobs.get_json(latest_key(p.task, REPO, p.number)) == doc
    bucket, prefix = s3_url[len("s3://"):].split("/", 1)
    client = s3_endpoint.client()
    for key in (hkey(writer.engine, p), latest_key(p.task, REPO, p.number)):
        head = client.head_object(Bucket=bucket, Key=f"{prefix}/{key}")
        assert head["ContentType"] == "application/json"


def test_a_new_batchs_history_is_its_rows_as_the_database_reads_them(writer, engine, blobs):
    """The history object of new rows is built from what was sent (not read back): it must be what
    the database holds, value for value, however the message spelled it."""
    sent = [prediction(),
            prediction(delivery_id="d-2", number=102, position=7, confidence=1, probability=0, precision=1,
                       probabilities={"needsdiagnosis": 0.1 + 0.2, "invalid": 1 / 3, "é ✓": 1e-7},
                       label="ünïcode ✓", predicted_at="2024-05-01T15:30:00.123456+05:30",
                       event=None, action=None, replay_id="run-1", fills_live=True),
            prediction(delivery_id="d-3", number=103, predicted_at="2024-05-01", probability=None,
                       precision=None, source="import")]
    assert writer.handle([delivery(p, tag) for tag, p in enumerate(sent, 1)]) == []
    stored = [record(row) for row in rows(engine)]
    [key] = {row["blob_key"] for row in stored}
    assert blobs.get(key) == history_lines(stored)  # byte for byte: 1.0 is not 1 in JSON
    assert stored[1]["predicted_at"] == "2024-05-01T10:00:00.123456Z"


def test_redelivery_with_other_values_changes_nothing(writer, engine, blobs):
    first = prediction()
    writer.handle([delivery(first)])
    writer.handle([delivery(replace(first, label="invalid", confidence=0.9,
                                    predicted_at="2024-05-02T00:00:00Z"))])
    (row,) = rows(engine)
    assert (row.label, row.confidence) == ("needsdiagnosis", 0.8)
    assert history(engine, blobs, first)["label"] == "needsdiagnosis"


def test_new_model_version_adds_a_row_beside_the_old(writer, engine, blobs):
    old, new = prediction(), prediction(model_version="2024.06.01", label="invalid", confidence=0.6)
    writer.handle([delivery(old)])
    writer.handle([delivery(new), delivery(old)])
    assert [r.model_version for r in rows(engine)] == ["2024.05.01", "2024.06.01"]
    assert sorted(blobs.keys("history/")) == sorted({hkey(engine, old), hkey(engine, new)})
    assert history(engine, blobs, new)["label"] == "invalid"
    # same event position: the newer row stands for the issue
    assert blobs.get_json(latest_key(old.task, REPO, 101))["model_version"] == "2024.06.01"


def test_lost_objects_are_rewritten_by_redelivery(writer, blobs, s3_url, s3_endpoint):
    p = prediction()
    writer.handle([delivery(p)])
    bucket, prefix = s3_url[len("s3://"):].split("/", 1)
    client = s3_endpoint.client()
    for key in (hkey(writer.engine, p), latest_key(p.task, REPO, p.number)):
        client.delete_object(Bucket=bucket, Key=f"{prefix}/{key}")
    assert blobs.keys() == []
    writer.handle([delivery(p)])
    assert history(writer.engine, blobs, p)["delivery_id"] == "d-1"
    assert blobs.get_json(latest_key(p.task, REPO, p.number))["delivery_id"] == "d-1"


def test_repair_rewrites_missing_and_stale_documents(writer, engine, blobs, s3_url, s3_endpoint):
    a = prediction()
    b = prediction(delivery_id="d-2", position=7)
    c = prediction(delivery_id="d-3", position=3, number=103, replay_id="r-1")
    writer.handle([delivery(a), delivery(b)])
    writer.handle([delivery(c)])
    assert repair(engine, blobs) == 0
    bucket, prefix = s3_url[len("s3://"):].split("/", 1)
    client = s3_endpoint.client()
    client.delete_object(Bucket=bucket, Key=f"{prefix}/{hkey(engine, a)}")  # a's and b's batch
    client.delete_object(Bucket=bucket, Key=f"{prefix}/{hkey(engine, c)}")
    blobs.put_json(latest_key(a.task, REPO, 101), {"position": 1, "id": 1})  # behind the database
    assert repair(engine, blobs) == 3
    assert history(engine, blobs, a)["delivery_id"] == "d-1"
    assert history(engine, blobs, b)["delivery_id"] == "d-2"
    assert history(engine, blobs, c)["replay_id"] == "r-1"
    assert blobs.get_json(latest_key(a.task, REPO, 101))["delivery_id"] == "d-2"
    assert blobs.keys(f"needsdiagnosis/{REPO}/103") == []  # replays never make a latest document
    assert repair(engine, blobs) == 0
    client.delete_object(Bucket=bucket, Key=f"{prefix}/{hkey(engine, c)}")
    assert repair(engine, blobs, since=datetime.now(UTC) + timedelta(hours=1)) == 0
    assert repair(engine, blobs, since=(datetime.now(UTC) - timedelta(hours=1)).isoformat()) == 1
    assert history(engine, blobs, c)["position"] == 3


@pytest.mark.parametrize("body, reason", [
    (b"not json", "not JSON"),
    ({"v": 1, "kind": "task"}, "expected a prediction"),
    ({**to_dict(prediction()), "v": 2}, "schema version"),
    ({k: v for k, v in to_dict(prediction()).items() if k != "label"}, "missing field"),
    (to_dict(prediction(confidence=1.5)), "confidence"),
    (to_dict(prediction(confidence=float("nan"))), "confidence"),
    (to_dict(prediction(probabilities={"a": -0.1})), "probabilities"),
    (to_dict(prediction(precision=1.5)), "precision must be a number in [0, 1]"),
    (to_dict(prediction(probability=float("inf"))), "probability must be a number in [0, 1]"),
    ({**to_dict(prediction()), "precision": "high"}, "field precision has type str"),
    (to_dict(prediction(label="")), "label"),
    (to_dict(prediction(label="   ")), "label"),
    (to_dict(prediction(repo="../etc")), "repo"),
    (to_dict(prediction(repo="no-slash")), "repo"),
    (to_dict(prediction(task="needs/diagnosis")), "task"),
    (to_dict(prediction(task="history")), "reserved"),
    (to_dict(prediction(model_version="")), "model_version"),
    (to_dict(prediction(delivery_id="../../x")), "delivery_id"),
    (to_dict(prediction(number=0)), "number"),
    (to_dict(prediction(number=2**40)), "number"),
    (to_dict(prediction(position=-1)), "position"),
    (to_dict(prediction(predicted_at="yesterday")), "predicted_at"),
    (to_dict(prediction(event=5)), "event"),
    (to_dict(prediction(replay_id="")), "replay_id"),
])
def test_malformed_message_is_rejected_and_nothing_written(writer, engine, blobs, body, reason):
    bad = delivery(body, tag=1)
    (rejection,) = writer.handle([bad])
    assert rejection.delivery is bad
    assert reason in rejection.reason and "\n" not in rejection.reason
    assert rows(engine) == []
    assert blobs.keys() == []


def test_a_bad_message_does_not_hold_back_its_batch(writer, engine):
    good, bad = delivery(prediction(), tag=1), delivery(b"{}", tag=2)
    rejections = writer.handle([good, bad])
    assert [r.delivery.tag for r in rejections] == [2]
    assert len(rows(engine)) == 1


def test_a_batch_is_stored_whole_but_its_bad_item_dead_lettered_alone(writer, engine, blobs):
    batch = [prediction(delivery_id=f"d-{i}", number=100 + i, position=i) for i in range(1, 6)]
    doc = json.loads(encode_batch(batch))
    doc["items"][2]["number"] = 0  # refused by validation, after decoding
    whole = delivery(doc, tag=7)
    (rejection,) = writer.handle([whole])
    assert rejection.delivery.tag == 7 and "number" in rejection.reason
    assert json.loads(rejection.delivery.body)["delivery_id"] == "d-3"  # its dead letter: it alone
    assert [r.delivery_id for r in rows(engine)] == ["d-1", "d-2", "d-4", "d-5"]
    assert writer.handle([whole]) != [] and len(rows(engine)) == 4  # redelivered: nothing twice
    [history] = [key for key in blobs.keys() if key.startswith("history/")]  # one object, 4 lines
    assert len(blobs.get(history).splitlines()) == 4


def test_replay_predictions_leave_latest_alone(writer, engine, blobs):
    live = prediction(position=5)
    writer.handle([delivery(live)])
    replayed = prediction(delivery_id="d-9", position=50, model_version="2025.01.01", label="invalid",
                          replay_id="r-1")
    writer.handle([delivery(replayed)])
    assert blobs.get_json(latest_key(live.task, REPO, 101))["delivery_id"] == "d-1"
    assert history(engine, blobs, replayed)["replay_id"] == "r-1"
    writer.handle([delivery(prediction(number=555, replay_id="r-1"))])
    assert blobs.get(latest_key(live.task, REPO, 555)) is None


def test_out_of_order_positions_never_regress_latest(writer, blobs):
    later, earlier = prediction(delivery_id="d-10", position=10), prediction(delivery_id="d-5", position=5)
    writer.handle([delivery(later)])
    writer.handle([delivery(earlier)])
    assert blobs.get_json(latest_key(later.task, REPO, 101))["position"] == 10
    # within one batch too, whatever the order of arrival
    writer.handle([delivery(prediction(delivery_id="d-30", position=30, number=7)),
                   delivery(prediction(delivery_id="d-20", position=20, number=7))])
    assert blobs.get_json(latest_key(later.task, REPO, 7))["position"] == 30
    assert len(blobs.keys("history/")) == 3  # one object a batch


def test_database_outage_propagates_as_transient(blobs):
    engine = create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    with pytest.raises(sa.exc.OperationalError) as info:
        PredictionWriter(engine, blobs).handle([delivery(prediction())])
    assert is_transient(info.value)
    assert blobs.keys() == []


def test_blob_failure_after_commit_is_repaired_by_the_retry(engine, blobs):
    class Broken(FileBlobStore):
        def put(self, key, data, content_type="application/json"):
            raise ConnectionError("S3 is away")

    p = prediction()
    with pytest.raises(ConnectionError):
        PredictionWriter(engine, Broken("/nonexistent")).handle([delivery(p)])
    assert len(rows(engine)) == 1  # committed; the message is not acked, so it comes back
    store(engine, blobs).handle([delivery(p)])
    assert len(rows(engine)) == 1
    assert history(engine, blobs, p)["delivery_id"] == "d-1"


def test_embedded_mode_sqlite_and_files(sqlite_url, tmp_path):
    engine = create_engine(sqlite_url)
    blobs = open_blob_store(f"file://{tmp_path}/blobs")
    writer = store(engine, blobs)
    a, b = prediction(), prediction(model_version="2024.06.01", position=2)
    assert writer.handle([delivery(a), delivery(a)]) == []
    assert writer.handle([delivery(a), delivery(b)]) == []
    assert [r.model_version for r in rows(engine)] == ["2024.05.01", "2024.06.01"]
    assert rows(engine)[0].predicted_at.replace(tzinfo=UTC) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert blobs.get_json(latest_key(a.task, REPO, 101))["model_version"] == "2024.06.01"
    (tmp_path / "blobs" / hkey(engine, a)).unlink()
    assert repair(engine, blobs) == 1
    assert sorted(blobs.keys("history/")) == sorted({hkey(engine, a), hkey(engine, b)})
    assert history(engine, blobs, a)["model_version"] == "2024.05.01"
    engine.dispose()


@pytest.mark.parametrize("backend", ["pg_url", "sqlite_url"])
def test_table_matches_the_migration(request, backend):
    engine = create_engine(request.getfixturevalue(backend))
    inspector = sa.inspect(engine)
    same = {"DOUBLE PRECISION": "FLOAT"}  # PostgreSQL's name for SQLAlchemy's Float

    def spelled(type_) -> str:
        name = type_.compile(engine.dialect)
        return same.get(name, name)

    migrated = {c["name"]: (spelled(c["type"]), c["nullable"]) for c in inspector.get_columns("predictions")}
    ours = {c.name: (c.type.compile(engine.dialect), c.nullable) for c in predictions.columns}
    assert ours == migrated
    assert [(u["name"], u["column_names"]) for u in inspector.get_unique_constraints("predictions")] == [
        ("uq_prediction_identity", ["delivery_id", "task", "model_version"])]
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("predictions")
               if i["name"].startswith("ix_")}
    assert indexes == {i.name: [c.name for c in i.columns] for i in predictions.indexes}
    engine.dispose()


@pytest.mark.parametrize("backend", ["pg_url", "sqlite_url"])
def test_the_records_of_an_all_new_batch_are_what_the_database_holds(request, backend, tmp_path):
    """A batch of new rows is not read back: its records (history, due issues) are what was sent, with
    id and stored_at. On both databases they are what reading the rows back gives."""
    from services.store.writer import _insert, _row

    engine = create_engine(request.getfixturevalue(backend))
    sent = [_row(p, check(p), "history/batch.jsonl") for p in (
        prediction(), prediction(delivery_id="d-2", replay_id="r-1", probability=None, precision=None),
        prediction(delivery_id="d-3", predicted_at="2024-05-01T10:00:00.123456+02:00"))]
    with engine.begin() as conn:
        stored, inserted = _insert(conn, sent)
    assert len(inserted) == 3
    assert stored == [record(row) for row in rows(engine)]
    engine.dispose()


def test_a_replay_by_the_live_model_fills_the_gap_as_the_live_record(writer, engine, blobs, tmp_path):
    """A webhook whose prediction never got stored, scored later by a replay with the live model: the
    row is the live record (listed as live, latest document written, repaired) and keeps its run id."""
    from services.api import queries

    filled = prediction(delivery_id="d-gap", number=777, position=70, replay_id="r-fill", fills_live=True)
    writer.handle([delivery(filled)])
    [row] = [r for r in rows(engine) if r.delivery_id == "d-gap"]
    assert row.fills_live and row.replay_id == "r-fill"
    assert blobs.get_json(latest_key(filled.task, REPO, 777))["delivery_id"] == "d-gap"
    live = queries.list_predictions(engine, {"replay": "none", "issue": "777", "repo": REPO}).items
    assert [p["delivery_id"] for p in live] == ["d-gap"] and live[0]["fills_live"] is True
    assert queries.latest_for_issue(engine, REPO, 777)["needsdiagnosis"]["replay_id"] == "r-fill"
    empty = FileBlobStore(tmp_path / "lost")  # every document lost: repair writes them again
    assert repair(engine, empty) >= 2
    assert empty.get_json(latest_key(filled.task, REPO, 777))["delivery_id"] == "d-gap"


def test_rows_stored_before_batching_keep_their_own_documents(writer, engine, blobs):
    """A row written before history was batched names its one-row document: a redelivery and
    `wcml store repair` rewrite that document, in its own shape."""
    p = prediction(delivery_id="d-old")
    writer.handle([delivery(p)])
    legacy = legacy_history_key(p.task, p.repo, p.number, p.model_version, p.delivery_id)
    with engine.begin() as conn:
        conn.execute(sa.update(predictions).values(blob_key=legacy))
    writer.handle([delivery(p)])  # redelivered
    assert blobs.get_json(legacy)["delivery_id"] == "d-old"
    blobs_root_keys = blobs.keys("history/")
    assert legacy in blobs_root_keys
    assert repair(engine, blobs) == 0


def due(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(latest_due.c.task, latest_due.c.repo,
                                                         latest_due.c.number).order_by(latest_due.c.id))]


@pytest.mark.parametrize("backend", ["pg_url", "sqlite_url"])
def test_latest_documents_are_written_by_the_follower_once_due(request, backend, tmp_path):
    """The consumer stores rows and history and marks live issues due; the follower writes each due
    issue's best live document (once for an issue seen twice) and only then lets the due rows go. An
    issue is due once per transaction, however many of its rows the transaction stored."""
    engine = create_engine(request.getfixturevalue(backend))
    blobs = FileBlobStore(tmp_path / "blobs")
    consumer = PredictionWriter(engine, blobs)
    consumer.handle([delivery(prediction(delivery_id="d-2", position=2)), delivery(prediction())])
    consumer.handle([delivery(prediction(delivery_id="d-3", number=303, replay_id="r-1"))])  # not live
    assert due(engine) == [("needsdiagnosis", REPO, 101)]
    consumer.handle([delivery(prediction(delivery_id="d-4", position=1))])  # an older one, later
    assert due(engine) == [("needsdiagnosis", REPO, 101)] * 2
    assert blobs.keys("needsdiagnosis/") == [] and len(blobs.keys("history/")) == 3
    latest = LatestDocuments(engine, blobs)
    assert latest.write_due() == 2 and latest.write_due() == 0
    assert due(engine) == []
    assert blobs.keys("needsdiagnosis/") == [latest_key("needsdiagnosis", REPO, 101)]
    assert blobs.get_json(latest_key("needsdiagnosis", REPO, 101))["delivery_id"] == "d-2"
    engine.dispose()


def test_a_failed_write_leaves_the_issues_due(engine, blobs, tmp_path):
    class Broken(FileBlobStore):
        def put(self, key, data, content_type="application/json"):
            if not key.startswith("history/"):
                raise ConnectionError("S3 is away")
            super().put(key, data, content_type)

    PredictionWriter(engine, blobs).handle([delivery(prediction())])
    with pytest.raises(ConnectionError):
        LatestDocuments(engine, Broken(tmp_path / "broken")).write_due()
    assert due(engine) == [("needsdiagnosis", REPO, 101)]
    assert LatestDocuments(engine, blobs).drain() == 1
    assert blobs.get_json(latest_key("needsdiagnosis", REPO, 101))["delivery_id"] == "d-1"


def test_each_issues_latest_row_is_the_first_entry_of_one_index_lookup(engine, blobs):
    """The follower's lookup of an issue's best live row reads the issue index in the query's order
    and stops at the first entry, on a table PostgreSQL never analysed: no sort, no scan of the task's
    rows (with the id last in the index, the planner scanned every row of the task, 0009)."""
    from services.store.latest import BEST_LIVE
    from shared.database.postgresql import arrays

    writer = PredictionWriter(engine, blobs)
    for start in range(0, 1000, 250):
        writer.handle([delivery(encode_batch([prediction(delivery_id=f"d-{n}", number=n, task=task,
                                                         position=n) for n in range(start, start + 250)]))
                       for task in ("needsdiagnosis", "issuetype")])
    issues = [(task, REPO, n) for n in range(100, 130) for task in ("issuetype", "needsdiagnosis")]
    params = arrays(issues, ("task", "repo", "number"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables "
                                    "WHERE relname = 'predictions'")).one() == (None, None)
        best_live = BEST_LIVE(conn).statement
        plan = list(nodes(explain(conn, best_live, params)))
        found = conn.execute(best_live, params).all()
    assert "Sort" not in {node["Node Type"] for node in plan}
    assert {node["Index Name"] for node in plan if "Index Name" in node} == {"ix_predictions_issue_position"}
    assert sorted((row.task, row.number) for row in found) == sorted((t, n) for t, _, n in issues)


def test_the_follower_gives_back_the_space_of_the_due_rows_it_took(engine, tmp_path):
    """Every due row taken leaves a dead row until a vacuum, and where autovacuum is off nothing else
    runs one: after ``vacuum_every`` rows the follower vacuums the table, here down to no page."""
    blobs = FileBlobStore(tmp_path / "blobs")
    PredictionWriter(engine, blobs).handle([delivery(encode_batch([prediction(delivery_id=f"d-{n}", number=n)
                                                                   for n in range(1, 301)]))])

    def pages() -> int:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT pg_relation_size('latest_due') / 8192")).scalar_one()

    assert LatestDocuments(engine, blobs, vacuum_every=1_000).drain() == 300 and pages() > 0
    PredictionWriter(engine, blobs).handle([delivery(encode_batch([prediction(delivery_id=f"e-{n}", number=n)
                                                                   for n in range(1, 301)]))])
    follower = LatestDocuments(engine, blobs, vacuum_every=500)
    assert follower.drain() == 300 and follower.taken_since_vacuum == 300 and pages() > 0
    PredictionWriter(engine, blobs).handle([delivery(encode_batch([prediction(delivery_id=f"f-{n}", number=n)
                                                                   for n in range(1, 301)]))])
    assert follower.drain() == 300 and follower.taken_since_vacuum == 0 and pages() == 0


def test_two_followers_take_different_due_rows(engine, blobs):
    """Store replicas each run a follower: a due row one holds is skipped by the other, not waited on."""
    PredictionWriter(engine, blobs).handle([delivery(prediction(delivery_id=f"d-{n}", number=n))
                                            for n in range(1, 5)])
    taken: list[int] = []

    class Slow(FileBlobStore):
        """The first follower, stopped while it holds its due rows: the second one runs then."""
        def put(self, key, data, content_type="application/json"):
            if not taken:
                taken.append(LatestDocuments(engine, blobs, batch=10).write_due())
            blobs.put(key, data, content_type)

    assert LatestDocuments(engine, Slow("/nonexistent"), batch=2).write_due() == 2
    assert taken == [2]  # the other two
    assert due(engine) == []
    assert len(blobs.keys(f"needsdiagnosis/{REPO}/")) == 4


def follow(loop, blobs, act, message: str) -> threading.Thread:
    """Run a follower's ``loop`` in a thread, ``act``, wait until the issue's latest document is
    written, stop the loop; return its (stopped) thread."""
    from tests.waiting import eventually

    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(stop,), daemon=True)
    thread.start()
    try:
        act()
        eventually(lambda: blobs.get(latest_key("needsdiagnosis", REPO, 101)) is not None, timeout=10,
                   message=message)
    finally:
        stop.set()
        thread.join(10)
    return thread


def test_the_store_service_runs_the_follower(engine, blobs):
    """Woken by the consumer: a live prediction's latest document follows without a drain."""
    from services.store.service import writer as store_service

    service = store_service(engine, blobs)
    [(name, loop)] = service.loops
    follow(loop, blobs, lambda: service.consumers[0].handler([delivery(prediction())]), "the latest document")
    assert name == "latest-documents" and due(engine) == []


def test_a_follower_in_another_process_writes_what_the_consumer_marked_due(engine, blobs, pg_url):
    """``wcml store`` runs the consumer without the follower and ``wcml latest`` beside it, which finds
    the due issues at its next poll."""
    from services.store.service import latest as latest_service
    from services.store.service import writer as store_service

    consumer = store_service(engine, blobs, follower=False)
    assert consumer.loops == ()
    other = create_engine(pg_url)  # the other process's own engine
    [(name, loop)] = latest_service(other, blobs).loops

    def act():
        time.sleep(0.5)  # past the follower's first look at the table: polling now
        consumer.consumers[0].handler([delivery(prediction())])

    try:
        thread = follow(loop, blobs, act, "the follower's poll to find the due issue")
    finally:
        other.dispose()
    assert name == "latest-documents" and not thread.is_alive() and due(engine) == []
