"""Graceful stop: SIGTERM/SIGINT set an event; loops finish their batch and exit 0.

SIGUSR1 makes a running service print every thread's stack to stderr and carry on: the way
to see where a stuck consumer or relay waits (`kill -USR1 PID`; gunicorn processes keep
their own meaning of USR1, reopening logs).
"""

from __future__ import annotations

import faulthandler
import gc
import logging
import signal
import threading
import time

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    stop = stop or threading.Event()

    def handler(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop now
        log.info("received %s, stopping after the current batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return stop


def pause(wakeup: threading.Event, stop: threading.Event, seconds: float) -> None:
    """A follower's rest: until ``wakeup`` is set (at once if it already is), ``stop`` is set, or
    ``seconds`` pass. ``wakeup`` is left set: the caller clears it before it next reads, so a wake-up
    that comes while it reads is not lost."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and not wakeup.is_set() and time.monotonic() < deadline:
        wakeup.wait(min(0.1, deadline - time.monotonic()))


def keep_startup_objects() -> None:
    """Once a process has built its service (models loaded, modules imported), before it serves:
    collect once, then leave every object alive now out of later collections (``gc.freeze``). A full
    collection walks every tracked object with the interpreter's lock held, every message in flight
    waiting, and a predictor holds hundreds of thousands (docs/benchmarks.md). Frozen, it walks only
    what came since."""
    gc.collect()
    gc.freeze()

