"""Reader input: filters, page sizes and cursors parse or fail with one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.api.filters import (
    MAX_LIMIT,
    FilterError,
    Filters,
    decode_cursor,
    encode_cursor,
    parse_limit,
)


def test_values_are_typed_and_empty_means_absent():
    f = Filters.parse({"repo": "webcompat/web-bugs", "issue": "42", "task": "needsdiagnosis", "model": "",
                       "min_confidence": "0.25", "max_confidence": "1", "since": "2024-05-01",
                       "until": "2024-05-02T10:00:00+02:00", "replay": "none", "label": "  "})
    assert f == Filters(repo="webcompat/web-bugs", issue=42, task="needsdiagnosis", min_confidence=0.25,
                        max_confidence=1.0, since=datetime(2024, 5, 1, tzinfo=UTC),
                        until=datetime(2024, 5, 2, 8, tzinfo=UTC), replay="none")
    assert f.until.tzinfo is UTC


@pytest.mark.parametrize("value, expected", [
    ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),  # naive is UTC
    ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("2024-05-01T10:00:00 01:00", datetime(2024, 5, 1, 9, tzinfo=UTC)),  # "+" lost in a query string
    ("2024-05-01T10:00:00.5-05:00", datetime(2024, 5, 1, 15, 0, 0, 500000, tzinfo=UTC)),
])
def test_timestamps(value, expected):
    assert Filters.parse({"since": value}).since == expected


@pytest.mark.parametrize("args, word", [
    ({"issue": "4a"}, "issue"), ({"issue": "٣"}, "issue"), ({"issue": str(2**31)}, "issue"),
    ({"since": "2024-02-30"}, "since"), ({"until": "soon"}, "until"),
    ({"min_confidence": "-0.1"}, "min_confidence"), ({"max_confidence": "inf"}, "max_confidence"),
    ({"repo": "a/b/c"}, "repo"), ({"repo": "../x"}, "repo"), ({"bogus": "1"}, "bogus"),
    ({"task": "t" * 65}, "task"),
    ({"label": "bug\x00"}, "control"), ({"repo": "\ta/b"}, "control"), ({"model": "x\n"}, "control"),
    ({"since": "0001-01-01T00:00:00+01:00"}, "out of range"), ({"until": "9999-12-31T23:59-01:00"}, "range"),
])
def test_bad_values(args, word):
    with pytest.raises(FilterError, match=word) as info:
        Filters.parse(args)
    assert "\n" not in str(info.value)


def test_ignored_names_are_not_filters():
    assert Filters.parse({"cursor": "x", "limit": "3"}, ignore=("cursor", "limit")) == Filters()
    with pytest.raises(FilterError):
        Filters.parse({"cursor": "x"})


def test_limit():
    assert parse_limit(None) == parse_limit("") == 50
    assert parse_limit("1") == 1 and parse_limit(str(MAX_LIMIT)) == MAX_LIMIT
    for bad in ("0", str(MAX_LIMIT + 1), "-1", "1.5", "x", "١"):
        with pytest.raises(FilterError, match="limit"):
            parse_limit(bad)


def test_cursor_round_trip_and_refusal():
    for row_id in (1, 77, 2**62):
        assert decode_cursor(encode_cursor(row_id)) == row_id
    assert decode_cursor(None) is None and decode_cursor("") is None
    for bad in ("garbage", "!!!", encode_cursor(1)[:-2], "cDE6LTE", "cDI6MQ", encode_cursor(2**63)):
        with pytest.raises(FilterError, match="cursor"):
            decode_cursor(bad)


def test_offsets_other_than_utc_compare_in_utc():
    plus_two = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert Filters.parse({"since": plus_two.isoformat()}).since == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_surrounding_spaces_are_dropped_but_names_are_kept_whole():
    f = Filters.parse({"repo": " webcompat/web-bugs ", "task": "\u2003needsdiagnosis", "label": "a b"})
    assert (f.repo, f.task, f.label) == ("webcompat/web-bugs", "needsdiagnosis", "a b")
