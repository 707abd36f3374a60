"""The dashboard's session: a signed cookie (itsdangerous, as Flask's own session) naming the key that
logged in and holding the CSRF token every state-changing dashboard form must send back.

The cookie holds no key, only the key's id (16 hex digits of its SHA-256 digest) and the token; it is
HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure when the request
came over HTTPS (directly or, as a reverse proxy says in ``X-Forwarded-Proto``, to it: a client lying
about that only stops its own browser from sending the cookie over plain HTTP), and it expires after
``MAX_AGE`` seconds. Signed with a secret derived from the configured keys
(``ApiKeys.session_secret``): a change of keys ends every session, and a removed key's session ends at
its next request, since the id no longer names a key.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "wcml_session"
MAX_AGE = 12 * 3600


class Sessions:
    def __init__(self, secret: bytes):
        self._signer = URLSafeTimedSerializer(secret, salt="wcml dashboard session")

    def read(self, request: Request) -> dict[str, Any]:
        """The session's values; empty for none, a forged one or an expired one."""
        value = request.cookies.get(COOKIE)
        if not value:
            return {}
        try:
            data = self._signer.loads(value, max_age=MAX_AGE)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, response: Response, request: Request, data: dict[str, Any]) -> None:
        secure = request.is_secure or request.headers.get("X-Forwarded-Proto", "").strip().lower() == "https"
        response.set_cookie(COOKIE, self._signer.dumps(data), max_age=MAX_AGE, path="/", httponly=True,
                            samesite="Strict", secure=secure)

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_matches(session: dict[str, Any], sent: str | None) -> bool:
    """The form's CSRF token is the session's (compared in constant time)."""
    expected = session.get("csrf")
    return isinstance(expected, str) and bool(sent) and hmac.compare_digest(expected.encode(),
                                                                             str(sent).encode())
