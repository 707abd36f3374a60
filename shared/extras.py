"""The distributed mode's client libraries are optional: a plain install serves the embedded mode only.

``pip install webcompat-ml`` brings what ``wcml run`` needs (SQLite, a ``sqlite://`` or ``memory://``
queue, ``file://`` blobs, waitress). RabbitMQ, PostgreSQL, S3 and gunicorn come with extras (``amqp``,
``postgresql``, ``s3``, ``server``; ``distributed`` is all four). A URL or command that needs one that
is not installed stops with one line naming the extra to install (a ``UserError``: exit status 2).
Each library is imported where it is used, never at module level, so a process imports only what its
URLs name.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlparse

from shared.errors import UserError

DISTRIBUTION = "webcompat-ml"

# URL scheme -> (module the adapter imports, the extra that installs it). PostgreSQL without a driver
# named is psycopg2 too (shared.database.postgresql says so to SQLAlchemy); another driver (psycopg,
# pg8000…) is the user's own choice, which SQLAlchemy names if it is missing.
_BY_SCHEME = {
    "amqp": ("pika", "amqp"),
    "amqps": ("pika", "amqp"),
    "s3": ("boto3", "s3"),
    "postgresql": ("psycopg2", "postgresql"),
    "postgresql+psycopg2": ("psycopg2", "postgresql"),
}


class MissingExtra(UserError):
    """A library the configuration needs is not installed; the message names the extra."""

    def __init__(self, what: str, module: str, extra: str):
        super().__init__(f"{what} but {module} is not installed: pip install '{DISTRIBUTION}[{extra}]'")
        self.module = module
        self.extra = extra


def require(module: str, extra: str, what: str) -> None:
    """Import ``module`` or raise ``MissingExtra`` (``what``: why it is needed, e.g. ``WCML_BROKER_URL
    is amqp://``). A module that is installed but fails to import for another reason is not hidden."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        if missing != module:
            raise
        raise MissingExtra(what, module, extra) from None


def require_for_url(variable: str, url: str) -> None:
    """The library ``url``'s scheme needs (pika, boto3, psycopg2), if any; ``variable`` names the setting.
    Several comma-separated broker URLs share one scheme family, so the first decides."""
    scheme = urlparse(url.split(",")[0].strip()).scheme
    if scheme not in _BY_SCHEME:
        return
    module, extra = _BY_SCHEME[scheme]
    require(module, extra, f"{variable} is {scheme.partition('+')[0]}://")
