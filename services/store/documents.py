"""Where prediction documents live in the blob store, and the rule for the "latest" one.

History documents are immutable, one per stored row. The latest document per issue and
task (webcompat's ``needsdiagnosis/<issue>.json``, now with owner/repo) only moves
forward: it is replaced by a live prediction of an equal or later (position, id).
"""

from __future__ import annotations

from typing import Any

from shared.blobs import BlobStore

HISTORY_PREFIX = "history/"


def history_key(task: str, repo: str, number: int, model_version: str, delivery_id: str) -> str:
    return f"{HISTORY_PREFIX}{task}/{repo}/{number}/{model_version}/{delivery_id}.json"


def issue_history_prefix(task: str, repo: str, number: int) -> str:
    return f"{HISTORY_PREFIX}{task}/{repo}/{number}/"


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
