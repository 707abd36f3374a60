"""One filter type and one way to ask for a replay: ``LogFilter`` checks and carries a slice of the log,
``request_for`` builds the request, and the command line and the API's body reader build the same one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api.replay_requests import request_of
from shared.replays import LogFilter, ReplayRequestError, request_for


def test_a_filter_travels_as_json_and_comes_back_the_same():
    selection = LogFilter.of({"from_position": 3, "since": "2026-01-01",
                              "until": datetime(2026, 2, 1, tzinfo=UTC), "repo": "a/b", "event": "issues",
                              "action": None, "tasks": ["ignored"]})
    assert selection.since == datetime(2026, 1, 1, tzinfo=UTC) and selection.action is None
    assert selection.to_json() == {"from_position": 3, "since": "2026-01-01T00:00:00+00:00",
                                   "until": "2026-02-01T00:00:00+00:00", "repo": "a/b", "event": "issues"}
    assert LogFilter.of(selection.to_json()) == selection
    assert LogFilter().to_json() == {} and LogFilter.of({}) == LogFilter()


@pytest.mark.parametrize("values, word", [
    ({"from_position": 0}, "from_position"), ({"to_position": "7"}, "to_position"),
    ({"from_position": True}, "from_position"), ({"since": "yesterday"}, "since"),
    ({"repo": "a b"}, "repo"), ({"event": 3}, "event"),
])
def test_a_filter_that_cannot_select_is_refused_naming_it(values, word):
    with pytest.raises(ReplayRequestError, match=word):
        LogFilter.of(values)


@pytest.mark.parametrize("changes, word", [
    ({"tasks": ["a b"]}, "tasks"), ({"tasks": "issuetype"}, "tasks"),
    ({"model_version": ""}, "model_version"), ({"created_by": "x" * 256}, "created_by"),
])
def test_a_request_naming_something_unusable_is_refused(changes, word):
    with pytest.raises(ReplayRequestError, match=word):
        request_for(LogFilter(), **{"created_by": "t", **changes})


def test_the_command_line_and_the_api_ask_for_the_same_run():
    flags = {"from_position": 5, "to_position": None, "since": "2026-01-01T00:00:00+00:00", "until": None,
             "repo": "a/b", "event": None, "action": None}  # as `wcml replay` parses them
    by_cli = request_for(LogFilter.of(flags), tasks=["issuetype"], model_version="m2", created_by="alice")
    body = {"from_position": 5, "since": "2026-01-01T00:00:00Z", "repo": "a/b", "tasks": ["issuetype"],
            "model_version": "m2", "created_by": "alice"}
    by_api = request_of(body, requested_by="api")
    same = ("filters", "tasks", "model_version", "created_by")
    assert {k: getattr(by_cli, k) for k in same} == {k: getattr(by_api, k) for k in same}
    assert by_cli.run_id != by_api.run_id and by_api.run_id.startswith("r-")
    assert request_of({}, requested_by="api").created_by == "api"


@pytest.mark.parametrize("body, error", [
    ([], "send a JSON object"), ({"colour": 1}, "unknown field(s): colour"),
    ({"repo": None}, "repo must not be null"), ({"tasks": "issuetype"}, "tasks must be a list"),
])
def test_a_body_the_api_cannot_read_is_refused_in_one_line(body, error):
    with pytest.raises(ReplayRequestError, match="^" + error.replace("(", r"\(").replace(")", r"\)")):
        request_of(body, requested_by="api")
