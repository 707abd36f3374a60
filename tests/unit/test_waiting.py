"""tests/waiting.py's ``eventually``: what it returns, what it retries, what its failure says."""

import time

import pytest

from tests.waiting import busy, eventually


def test_returns_the_first_truthy_value_and_polls_until_then():
    calls = []

    def third_time():
        calls.append(1)
        return len(calls) >= 3 and {"rows": len(calls)}

    assert eventually(third_time, timeout=5, interval=0.01) == {"rows": 3}
    assert len(calls) == 3


def test_an_exception_means_not_yet():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("still starting")
        return "up"

    assert eventually(flaky, timeout=5, interval=0.01) == "up"


def test_the_failure_says_what_was_awaited_and_the_last_value_seen():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"waited 0.2 s for 3 rows; last value: 0"):
        eventually(lambda: 0, timeout=0.2, interval=0.05, message="3 rows")
    assert 0.2 <= time.monotonic() - started < 2


def test_the_failure_gives_the_last_exception_as_its_cause():
    def short():
        rows = 2
        assert rows == 3, f"{rows} of 3 rows"

    expected = r"for short; last exception: AssertionError: 2 of 3 rows"
    with pytest.raises(AssertionError, match=expected) as info:
        eventually(short, timeout=0.1, interval=0.02)
    assert isinstance(info.value.__cause__, AssertionError)


def test_a_message_function_runs_only_on_failure_and_a_docstring_names_the_check():
    asked = []
    assert eventually(lambda: True, timeout=1, message=lambda: asked.append(1) or "x")
    assert not asked

    def done():
        """the job to finish"""
        return False

    with pytest.raises(AssertionError, match="for the job to finish"):
        eventually(done, timeout=0)
    with pytest.raises(AssertionError, match="for logs: boom"):
        eventually(done, timeout=0, message=lambda: "logs: boom")


def test_checks_at_least_once_even_without_time_and_lets_a_test_failure_through():
    assert eventually(lambda: "now", timeout=0) == "now"
    with pytest.raises(pytest.fail.Exception, match="give up"):
        eventually(lambda: pytest.fail("give up"), timeout=5)  # not an Exception: no retry


def test_busy_means_anything_in_flight():
    rest = {"unpublished_events": 0, "ready": {"events.dispatcher": 0, "results.store": 0},
            "unacknowledged": 0}
    assert not busy(rest)
    assert busy({**rest, "unpublished_events": 1})
    assert busy({**rest, "ready": {"events.dispatcher": 0, "results.store": 2}})
    assert busy({**rest, "unacknowledged": 5})
