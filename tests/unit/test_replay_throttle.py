import threading
import time

from services.ingest.replay import Throttle, log_filter


def test_throttle_keeps_the_average_rate():
    throttle, stop = Throttle(rate=200), threading.Event()
    start = time.monotonic()
    for _ in range(10):
        throttle.wait(10, stop)  # 100 events at 200/s: the last page is due after 0.45 s
    assert 0.4 <= time.monotonic() - start < 1.5
    assert throttle.page_size(500) == 40


def test_unthrottled_and_stop_do_not_wait():
    start = time.monotonic()
    Throttle(None).wait(10_000, threading.Event())
    stopped = threading.Event()
    stopped.set()
    slow = Throttle(rate=1)
    slow.wait(1, stopped)
    slow.wait(1, stopped)  # due in 1 s, but a stop request cuts the wait short
    assert time.monotonic() - start < 0.5
    assert Throttle(None).page_size(500) == 500


def test_stored_filters_become_a_log_filter():
    selection = log_filter({"from_position": 3, "since": "2026-01-01T00:00:00+00:00", "repo": "a/b"})
    assert selection.from_position == 3 and selection.repo == "a/b" and selection.since.year == 2026
    assert selection.to_position is None
