"""What a reader may ask of the predictions: filter values, page size and cursor, parsed once.

The API and the dashboard both pass raw query-string values here, so a bad value gets
the same one-line ``FilterError`` (a 400) wherever it comes from.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime

from shared.times import TimeFormatError, parse_time

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
LIVE, ANY_REPLAY = "none", "any"  # replay=none: live predictions only; replay=any: replays only
_CURSOR_PREFIX = "p1:"
MAX_ID = 2**63 - 1  # row ids are BIGINT
REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}/[A-Za-z0-9_.-]{1,100}")
"""The shape of a repository filter (GitHub's owner and name characters); what matches nothing is fine."""
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FilterError(ValueError):
    """A filter, page size or cursor a reader sent is not usable; the message is one line."""


@dataclass(frozen=True)
class Filters:
    repo: str | None = None
    issue: int | None = None
    task: str | None = None
    model: str | None = None
    label: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    replay: str | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str], ignore: tuple[str, ...] = ()) -> Filters:
        """Filters from query-string values; empty values mean "no filter", unknown names are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known - set(ignore))
        if unknown:
            raise FilterError(f"unknown parameter {unknown[0]!r}; filters are {', '.join(sorted(known))}")
        # Checked before strip(), which would hide a tab or an overlong value.
        bad = next((name for name in sorted(known) if CONTROL.search(args.get(name) or "")), None)
        if bad:
            raise FilterError(f"{bad} contains a control character")
        for name in ("task", "model", "label", "replay"):
            check_name(name, args.get(name) or "")
        raw = {k: v.strip() for k, v in args.items() if k in known and v is not None and v.strip()}
        if "repo" in raw and not REPO.fullmatch(raw["repo"]):
            raise FilterError(f"repo must be owner/name, got {raw['repo'][:80]!r}")
        parsed = cls(
            repo=raw.get("repo"),
            issue=_number("issue", raw["issue"]) if "issue" in raw else None,
            task=raw.get("task"), model=raw.get("model"), label=raw.get("label"),
            min_confidence=_confidence("min_confidence", raw.get("min_confidence")),
            max_confidence=_confidence("max_confidence", raw.get("max_confidence")),
            since=_timestamp("since", raw.get("since")),
            until=_timestamp("until", raw.get("until")),
            replay=raw.get("replay"),
        )
        if None not in (parsed.min_confidence, parsed.max_confidence) \
                and parsed.min_confidence > parsed.max_confidence:
            raise FilterError("min_confidence is greater than max_confidence")
        if None not in (parsed.since, parsed.until) and parsed.since > parsed.until:
            raise FilterError("since is later than until")
        return parsed


def check_name(name: str, value: str) -> str:
    """A task, model, label or replay name: at most 64 characters, no control characters."""
    if len(value) > 64:
        raise FilterError(f"{name} is longer than 64 characters")
    if CONTROL.search(value):
        raise FilterError(f"{name} contains a control character")
    return value


def _number(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 2**31 - 1:
        raise FilterError(f"{name} must be a positive issue number, got {value[:40]!r}")
    return int(value)


def _confidence(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise FilterError(f"{name} must be a number between 0 and 1, got {value[:40]!r}")
    return number


def _timestamp(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except TimeFormatError as exc:
        problem = "is out of range" if exc.out_of_range else "must be an ISO 8601 date or date-time"
        raise FilterError(f"{name} {problem}, got {value[:40]!r}") from None


def parse_limit(value: str | int | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise FilterError(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text[:40]!r}")
    return int(text)


def parse_id(name: str, value: str | int | None) -> int | None:
    """A row id given as a parameter (``after``): a whole number from 0 to the largest id."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ID:
        raise FilterError(f"{name} must be a whole number from 0 to {MAX_ID}, got {text[:40]!r}")
    return int(text)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id the previous page ended at (opaque to readers, so its form may change)."""
    if cursor is None or cursor == "":
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    number = text[len(_CURSOR_PREFIX):]
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit() or not 1 <= int(number) <= MAX_ID:
        raise FilterError("cursor is not one this API issued; start again without it")
    return int(number)
