"""Time stamps: one ISO 8601 reader for every command, filter and message."""

from __future__ import annotations

from datetime import UTC, date, datetime


class TimeFormatError(ValueError):
    """Not an ISO 8601 date or date-time, or outside what a datetime can hold (``out_of_range``)."""

    def __init__(self, message: str, out_of_range: bool = False):
        super().__init__(message)
        self.out_of_range = out_of_range


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str) -> datetime:
    """ISO 8601 date or date-time (``Z`` allowed) to an aware UTC datetime.

    A naive time is UTC and a bare date its midnight UTC. In a query string an unescaped
    ``+01:00`` arrives as `` 01:00``; that is read as the offset it was meant to be.
    """
    text = str(value).strip()
    if len(text) > 19 and text[-6] == " ":
        text = text[:-6] + "+" + text[-5:]
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except ValueError:
        raise TimeFormatError(f"not an ISO 8601 date or date-time: {text[:40]!r}") from None
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00: before the first representable UTC instant
        raise TimeFormatError(f"out of range: {text[:40]!r}", out_of_range=True) from None


def time_argument(text: str) -> str:
    """A command-line time (argparse ``type``): ISO 8601 UTC, or the parser's one-line error."""
    import argparse

    try:
        return parse_time(text).isoformat()
    except TimeFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """UTC, ISO 8601 with a ``Z``: one spelling whatever the database hands back."""
    value = as_utc(value)
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
