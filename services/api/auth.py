"""API keys, held only as SHA-256 digests from the moment the API starts.

A presented key is hashed and compared with every known digest in constant time, so
neither timing nor a memory dump of the running API gives a key away.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeys:
    def __init__(self, keys: Iterable[str]):
        self._digests = tuple(_digest(k.strip()) for k in keys if k and k.strip())

    def __len__(self) -> int:
        return len(self._digests)

    def allows(self, authorization: str | None) -> bool:
        """True for ``Bearer <key>`` with a known key; no keys configured means nobody is let in."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        presented = _digest(token)
        found = False
        for digest in self._digests:  # no early exit: every key costs the same
            found |= hmac.compare_digest(presented, digest)
        return found
