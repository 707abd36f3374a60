"""What every benchmark needs beyond the test harness: the machine, percentiles, results, and
services with their peak memory.

Fresh databases and vhosts, free ports, service processes and every wait come from the tests'
harness (tests/harness.py, tests/processes.py, tests/waiting.py): one harness for both.
Benchmarks print figures; they never pass or fail on time. Loads stay on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path

from tests.harness import DatabaseFactory, VhostManager, free_port, unique
from tests.processes import ServiceProcess, wait_http

__all__ = ["AMQP", "PG_ADMIN", "RESULTS", "ROOT", "Service", "cpu_of_commands", "free_port", "fresh_database",
           "fresh_vhost", "machine", "percentile", "save", "wait_http"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("WCML_BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
AMQP = os.environ.get("WCML_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def machine() -> dict:
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def fresh_database() -> tuple[str, callable]:
    """A new, migrated PostgreSQL database, and a function that drops it."""
    factory = DatabaseFactory(PG_ADMIN, prefix="wcml_bench")
    return factory.create(), factory.drop_all


def fresh_vhost() -> tuple[str, callable]:
    """A new RabbitMQ vhost (its AMQP URL), and a function that deletes it."""
    manager, name = VhostManager(AMQP), unique("wcml-bench")
    return manager.create(name), lambda: manager.delete(name)


class Service(ServiceProcess):
    """A `wcml` service (or, ``module=False``, any command) as its own process group, run from the
    project's root with the environment plus ``env``; with its peak memory."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path, module: bool = True):
        super().__init__(name, args, {**os.environ, **env}, log_dir, command=None if module else args,
                         cwd=ROOT)

    def pids(self) -> list[int]:
        """The process and its descendants (gunicorn workers, the relay)."""
        found, queue = [], [self.proc.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                children = []
            queue.extend(int(c) for c in children)
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the process tree (live processes only)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
            except (OSError, IndexError, ValueError):
                pass
        return round(total / tick, 2)

    def rss_mib(self) -> float:
        """Sum of VmRSS (resident now) over the process tree, in MiB."""
        return self._status_kib("VmRSS:") / 1024

    def peak_rss_mib(self) -> float:
        """Sum of VmHWM (peak resident set) over the process tree, in MiB."""
        return round(self._status_kib("VmHWM:") / 1024, 1)

    def _status_kib(self, field: str) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(field):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total


def cpu_of_commands(*names: str) -> float:
    """CPU seconds used so far by every live process with one of these command names (PostgreSQL's
    ``postgres`` backends, RabbitMQ's ``beam.smp``): the servers' share of a run, beside ours."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        command, fields = text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()
        if command in names:
            total += int(fields[11]) + int(fields[12])
    return round(total / tick, 2)


def save(name: str, figures: dict) -> Path:
    """bench/results/<date>-<host>/<name>.json, and the same under latest/."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    doc = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **figures,
    }
    for folder in (RESULTS / f"{stamp}-{socket.gethostname()}", RESULTS / "latest"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))
    return RESULTS / "latest" / f"{name}.json"
