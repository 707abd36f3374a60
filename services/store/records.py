"""One stored prediction as a plain JSON-ready dict: the same shape in S3 documents and API items."""

from __future__ import annotations

from typing import Any

from shared.times import iso

FIELDS = ("id", "task", "model_version", "delivery_id", "position", "event", "action", "repo", "number",
          "label", "confidence", "probabilities", "predicted_at", "stored_at", "replay_id", "fills_live",
          "source", "blob_key", "probability", "precision")


def record(row: Any) -> dict[str, Any]:
    """A ``predictions`` row (SQLAlchemy Row or mapping) as a dict of JSON values."""
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    out = {name: data.get(name) for name in FIELDS}
    out["predicted_at"] = iso(out["predicted_at"])
    out["stored_at"] = iso(out["stored_at"])
    out["confidence"] = float(out["confidence"])
    out["fills_live"] = bool(out["fills_live"])
    for name in ("probability", "precision"):
        out[name] = None if out[name] is None else float(out[name])
    out["probabilities"] = {str(k): float(v) for k, v in (out["probabilities"] or {}).items()}
    return out
