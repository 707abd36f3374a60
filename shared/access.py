"""Who may do what: API keys and their scopes, held only as SHA-256 digests from the moment they are read.

``WCML_API_KEYS`` is a comma-separated list of entries, each ``KEY`` or ``SCOPE:KEY``. The scopes are
ranked, each including those before it:

- ``metrics``: ``GET /metrics`` only (a Prometheus scraper);
- ``read``: every read of the API and the dashboard, and ``/metrics``;
- ``operate``: what changes something (replays, score-now, model changes, action resumes: every
  ``/api/`` method other than GET), and all of ``read``.

A bare ``KEY`` has every scope (``operate``), as every key had before scopes existed, so a deployment
keeps working unchanged; give each key the least scope it needs. An entry with a ``:`` must name a
scope before it (``raed:…`` stops the start naming the entry), so a typo never hands out every scope.

A presented key is hashed and compared with every known digest in constant time, so neither timing nor
a memory dump of the running process gives a key away.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

SCOPES = ("metrics", "read", "operate")  # ranked: each includes those before it
FULL = SCOPES[-1]  # a key given without a scope


class KeyEntryError(ValueError):
    """An entry of WCML_API_KEYS is not ``KEY`` or ``SCOPE:KEY``; the message is one line, without the key."""


def parse_entry(entry: str) -> tuple[str, str]:
    """``(scope, key)`` of one entry: ``KEY`` (every scope) or ``SCOPE:KEY``."""
    text = entry.strip()
    if ":" not in text:
        return FULL, text
    scope, _, key = text.partition(":")
    scope = scope.strip()
    if scope not in SCOPES:
        # a scope-like word is shown; anything else may be the front of a key with a ':' in it
        shown = scope if scope.isascii() and scope.isalpha() and scope.islower() and len(scope) <= 12 else "…"
        raise KeyEntryError(f"names scope {shown!r} before ':'; scopes are {', '.join(SCOPES)} "
                            "(a key without 'scope:' has every scope)")
    if not key.strip():
        raise KeyEntryError(f"has no key after '{scope}:'")
    return scope, key.strip()


def check_entries(entries: Iterable[str]) -> None:
    """``KeyEntryError`` naming the first bad entry by its place (1-based), never by its text."""
    for place, entry in enumerate(entries, start=1):
        try:
            parse_entry(entry)
        except KeyEntryError as exc:
            raise KeyEntryError(f"entry {place} {exc}") from None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: ``key_id`` names the key (16 hex digits of its digest, not the key)."""

    key_id: str
    scope: str

    def may(self, scope: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(scope)


class ApiKeys:
    """The configured keys as (digest, scope); ``KeyEntryError`` for a malformed entry."""

    def __init__(self, entries: Iterable[str]):
        entries = [e for e in entries if e and e.strip()]
        check_entries(entries)
        self._digests = tuple((_digest(key), scope) for scope, key in map(parse_entry, entries))

    def __len__(self) -> int:
        return len(self._digests)

    def caller_of_key(self, key: str) -> Caller | None:
        """The caller a key stands for, None for an unknown one (every key costs the same)."""
        if not key:
            return None
        presented, found = _digest(key), None
        for digest, scope in self._digests:  # no early exit
            if hmac.compare_digest(presented, digest):
                found = Caller(digest.hex()[:16], scope)
        return found

    def caller(self, authorization: str | None) -> Caller | None:
        """The caller of ``Authorization: Bearer <key>``; None without one or with an unknown key."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.caller_of_key(token.strip())

    def caller_by_id(self, key_id: str) -> Caller | None:
        """The caller a session names by ``key_id``; None once that key is no longer configured."""
        found = None
        for digest, scope in self._digests:
            if hmac.compare_digest(digest.hex()[:16].encode(), str(key_id).encode()):
                found = Caller(key_id, scope)
        return found

    def allows(self, authorization: str | None) -> bool:
        """True for ``Bearer <key>`` with a known key; no keys configured means nobody is let in."""
        return self.caller(authorization) is not None

    def session_secret(self) -> bytes:
        """What signs dashboard sessions: derived from every key's digest, so every worker and every
        restart with the same keys agrees, and a change of keys ends every session."""
        joined = b"".join(sorted(digest for digest, _ in self._digests))
        return hmac.new(b"wcml dashboard session", joined, hashlib.sha256).digest()
