"""The store's command: ``wcml store repair`` (rewrite missing or stale S3 documents from the rows)."""

from __future__ import annotations

from services.store import writer


def repair(engine, blobs, since: str | None) -> int:
    written = writer.repair(engine, blobs, since)
    print(f"wrote {written} missing or stale document(s)")
    return 0
