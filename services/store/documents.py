"""Where prediction documents live in the blob store, and the rule for the "latest" one.

History documents are immutable JSON lines, one object per batch the store consumed
(``history/<yyyy>/<mm>/<dd>/<batch>.jsonl``, a row a line in id order; each row's ``blob_key``
names its batch's object), as a data lake keeps an append-only record: one object per batch
rather than per prediction is what lets a replay of history run at the broker's speed. Rows stored
before that change keep their one-document-per-row key (``history/<task>/…/<delivery>.json``).
The latest document per issue and task (webcompat's ``needsdiagnosis/<issue>.json``, now with
owner/repo) only moves forward: it is replaced by a live prediction of an equal or later
(position, id).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import orjson

from shared import metrics
from shared.blobs import BlobStore

HISTORY_PREFIX = "history/"
DOCUMENTS = metrics.counter("wcml_store_documents_written_total", "Blob documents written", ("kind",))


def batch_key(now: datetime) -> str:
    """A new batch's history object (UTC date folders keep listings short)."""
    return f"{HISTORY_PREFIX}{now:%Y/%m/%d}/{uuid.uuid4().hex}.jsonl"


def legacy_history_key(task: str, repo: str, number: int, model_version: str, delivery_id: str) -> str:
    """A row stored before history was batched: one document of its own."""
    return f"{HISTORY_PREFIX}{task}/{repo}/{number}/{model_version}/{delivery_id}.json"


def history_lines(documents: list[dict[str, Any]]) -> bytes:
    """A batch's history object: its rows as JSON lines, in id order."""
    ordered = sorted(documents, key=lambda d: d["id"])
    return b"".join(orjson.dumps(d, option=_LINE) for d in ordered)


_LINE = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def read_history(data: bytes | None) -> list[dict[str, Any]]:
    """The rows in a history object (JSON lines; a legacy one-row document too)."""
    if not data:
        return []
    text = data.decode()
    if text.lstrip().startswith("{") and "\n{" not in text.strip():
        return [json.loads(text)]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def latest_key(task: str, repo: str, number: int) -> str:
    return f"{task}/{repo}/{number}.json"


def rank(document: dict[str, Any] | None) -> tuple[int, int]:
    """Order of live predictions for one issue and task: event position, then row id."""
    if not isinstance(document, dict):
        return (-1, -1)
    position, row_id = document.get("position"), document.get("id")
    return (position if isinstance(position, int) else -1, row_id if isinstance(row_id, int) else -1)


def write_latest(blobs: BlobStore, document: dict[str, Any], *, replace_equal: bool = True) -> bool:
    """Write ``document`` as its issue's latest unless a later one is stored; True if written."""
    key = latest_key(document["task"], document["repo"], document["number"])
    try:
        current = blobs.get_json(key)
    except ValueError:  # unreadable: ours to replace
        current = None
    if current is not None:
        if rank(document) < rank(current) or (not replace_equal and rank(document) == rank(current)):
            return False
    blobs.put_json(key, document)
    return True
