"""The predictions feed (``GET /api/v1/predictions?after=<id>``): a reader that follows it by the last
id it read never misses a row, with store consumers committing side by side (real PostgreSQL: ids
are given in commit order; SQLite: one writer at a time)."""

from __future__ import annotations

import threading

import pytest

from services.api import queries
from services.store.writer import PredictionWriter
from shared.blobs import FileBlobStore
from shared.broker.port import Delivery
from shared.database import create_engine
from shared.messages import encode_batch, replace
from shared.predictions import predictions
from tests.builders import AUTH, api_app, make, store

WRITERS, BATCHES, BATCH = 3, 40, 25


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request):
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def follow(engine, stop: threading.Event, seen: list[int]) -> None:
    """Read the feed from the start, by the last id read, until told to stop and nothing is left."""
    last = 0
    while True:
        stopping = stop.is_set()
        page = queries.list_predictions(engine, after=last, limit=100).items
        seen.extend(item["id"] for item in page)
        last = page[-1]["id"] if page else last
        if stopping and not page:
            return


def test_a_reader_following_the_feed_misses_no_row_while_consumers_commit_side_by_side(engine, tmp_path):
    def write(w: int) -> None:
        writer = PredictionWriter(engine, FileBlobStore(tmp_path / "blobs"))
        for b in range(BATCHES):
            batch = [replace(make(i), delivery_id=f"w{w}-b{b}-{i}") for i in range(BATCH)]
            body = encode_batch(batch)
            assert writer.handle([Delivery(body, "issuetype", "wcml.results", {}, False, 0)]) == []

    stop, seen = threading.Event(), []
    reader = threading.Thread(target=follow, args=(engine, stop, seen))
    reader.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join(60)
    with engine.connect() as conn:
        stored = sorted(conn.execute(predictions.select().with_only_columns(predictions.c.id)).scalars())
    assert len(stored) == WRITERS * BATCHES * BATCH
    assert sorted(seen) == seen and set(stored) - set(seen) == set()
    assert len(seen) == len(set(seen)) == len(stored)


def test_the_feed_through_the_api(engine, tmp_path):
    store(engine, tmp_path, [make(i) for i in range(1, 8)])
    client = api_app(engine).test_client()
    first = client.get("/api/v1/predictions?after=0&limit=3", headers=AUTH).get_json()
    ids = [item["id"] for item in first["items"]]
    assert ids == sorted(ids) and len(ids) == 3 and first["next_cursor"] is None
    rest = client.get(f"/api/v1/predictions?after={ids[-1]}&task=issuetype", headers=AUTH).get_json()
    assert all(item["id"] > ids[-1] and item["task"] == "issuetype" for item in rest["items"])
    newest = client.get("/api/v1/predictions?limit=2", headers=AUTH).get_json()
    both = client.get(f"/api/v1/predictions?after=1&cursor={newest['next_cursor']}", headers=AUTH)
    assert both.status_code == 400 and "not both" in both.get_json()["error"]
    bad = client.get("/api/v1/predictions?after=-1", headers=AUTH)
    assert bad.status_code == 400 and "after must be a whole number" in bad.get_json()["error"]
