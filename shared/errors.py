"""Tell a passing outage from a bad message.

A consumer retries a transient failure in place (the message is not requeued, so
an outage never pushes innocent messages over the delivery limit) and
dead-letters only what fails for a reason of its own.
"""

from __future__ import annotations

import socket


class UserError(Exception):
    """A problem the user can fix (a setting, a file, a name): shown as one line, exit status 2."""


class TransientError(Exception):
    """Raise from a handler when a dependency (database, S3, broker) is unavailable."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (TransientError, ConnectionError, TimeoutError, socket.error)):
        return True
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import EndpointConnectionError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (BotoConnectionError, EndpointConnectionError))
