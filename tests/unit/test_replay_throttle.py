import threading
import time

from services.ingest.replay import Throttle
from shared.replays import LogFilter


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
    selection = LogFilter.of({"from_position": 3, "since": "2026-01-01T00:00:00+00:00", "repo": "a/b"})
    assert selection.from_position == 3 and selection.repo == "a/b" and selection.since.year == 2026
    assert selection.to_position is None


def test_a_replay_waits_while_the_queues_on_its_path_are_full():
    """The in-process broker (the embedded mode's): 30 messages wait for a predictor, the bound is 20,
    so the replay holds back until the consumers have taken the queue under 10."""
    from services.ingest.replay import Backlog, Replayer
    from shared import topology
    from shared.broker import Outgoing
    from shared.broker.memory import MemoryBroker
    from shared.event_routes import load_rules
    from shared.messages import TASKS_EXCHANGE

    broker = MemoryBroker()
    topology.declare(broker, ["issuetype", "needsdiagnosis"])
    broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"{}", message_id=f"m-{i}") for i in range(30)])
    backlog = Backlog(broker, ["tasks.issuetype", "results.store"], high=20, low=10, poll=0.01)
    assert backlog.depth() == 30
    waiting = threading.Thread(target=backlog.wait, args=(threading.Event(),))
    waiting.start()
    broker.settle(broker.get("tasks.issuetype", 15), requeue=False)  # 15 left: still over 10
    waiting.join(0.3)
    assert waiting.is_alive()
    broker.settle(broker.get("tasks.issuetype", 6), requeue=False)  # 9 left
    waiting.join(2)
    assert not waiting.is_alive() and backlog.waited > 0.2
    stop = threading.Event()
    stop.set()
    broker.publish([Outgoing(TASKS_EXCHANGE, "issuetype", b"{}", message_id=f"n-{i}") for i in range(30)])
    backlog.wait(stop)  # a stop request ends the wait at once
    replayer = Replayer(None, broker, None, rules=load_rules())
    assert replayer.backlog([]).queues == ["tasks.issuetype", "tasks.needsdiagnosis", "results.store"]
    assert replayer.backlog(["needsdiagnosis"]).queues == ["tasks.needsdiagnosis", "results.store"]
    assert (replayer.backlog([]).high, replayer.backlog([]).low) == (400, 200)  # 20,000 tasks, 50 a message
