"""GitHub webhook signatures: HMAC-SHA256 of the raw body, any current secret may sign."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secrets: Iterable[str], body: bytes, header: str | None) -> bool:
    """True when ``header`` is ``sha256=<hex>`` for ``body`` under one of ``secrets``.

    The prefix is removed as a prefix (the original handler's ``lstrip`` removed
    characters), and every comparison is constant-time.
    """
    if not header or not header.startswith(PREFIX):
        return False
    given = header.encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(secret, body).encode(), given)
    return matched
