"""API keys and their scopes, for the query API: ``shared.access`` (the ingest and metrics listeners
read the same keys)."""

from __future__ import annotations

from shared.access import SCOPES, ApiKeys, Caller, KeyEntryError

__all__ = ["SCOPES", "ApiKeys", "Caller", "KeyEntryError"]
