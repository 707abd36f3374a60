"""The store, declared: predictions in (database row, then blob documents), and the follower that
writes each issue's latest document."""

from __future__ import annotations

import sqlalchemy as sa

from services.store.latest import LatestDocuments
from services.store.writer import PredictionWriter
from shared import topology
from shared.blobs import BlobStore
from shared.broker import ConsumeOptions
from shared.service import Consumer, Service

# Large batches: one multi-row INSERT and one commit per batch (of up to 2,000 rows) is where the
# store's speed is. A message may hold up to 256 predictions, so 200 in flight hold at most 51,200.
OPTIONS = ConsumeOptions(prefetch=200, max_batch=100)


def writer(engine: sa.Engine, blobs: BlobStore, *, follower: bool = True) -> Service:
    """Rows and history objects from the results queue; beside it (``follower``), the follower that
    writes the latest documents the consumer marked due. Without it, another process runs ``latest``
    (``wcml store`` starts one beside it: the two threads in one process shared its interpreter lock,
    and the follower held it nearly half the time in a replay)."""
    documents = LatestDocuments(engine, blobs) if follower else None
    handle = PredictionWriter(engine, blobs, on_due=documents.wake if documents else lambda: None).handle
    results = Consumer(topology.RESULTS_QUEUE.name, handle, OPTIONS, threads=2)
    if documents is None:  # the follower in the other process polls the due rows
        return Service("store", consumers=(results,))
    return Service("store", consumers=(results,), loops=(("latest-documents", documents.run),))


def latest(engine: sa.Engine, blobs: BlobStore) -> Service:
    """The latest-documents follower alone: it polls the due rows (``LatestDocuments.idle``)."""
    return Service("latest", loops=(("latest-documents", LatestDocuments(engine, blobs).run),))
