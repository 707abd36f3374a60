"""Run `wcml` services as separate OS processes for end-to-end and fault tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from shared.settings import metrics_port_variable
from shared.topology import SERVICES
from tests.harness import free_port
from tests.waiting import eventually

STACK_DUMP = b"(most recent call first)"  # faulthandler's header for each thread (SIGUSR1)


class ServiceProcess:
    """``wcml <args>`` (or any ``command``) in its own process group, its output in <log_dir>/<name>.log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, *,
                 command: list[str] | None = None, cwd: Path | None = None):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(command or [sys.executable, "-m", "services.cli", *args], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=cwd)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the service's main process only, as `docker stop` does; then clear its group."""
        if self.alive():
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything it left behind
        except ProcessLookupError:
            pass
        self.log.close()
        return self.proc.returncode

    def dump_stacks(self) -> None:
        """SIGUSR1 to the service's process group: its Python processes print their threads' stacks."""
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]


class Pipeline:
    """Start services by name; stop them all (SIGTERM) at the end and report their exit codes."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_dir = log_dir
        self.procs: dict[str, ServiceProcess] = {}

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        """``env``: variables for this process on top of the pipeline's. Every service's metrics port
        (``WCML_<SERVICE>_METRICS_PORT``) is a free one of its own unless given, so processes side by
        side on this host (two predictors, a relay beside ingest) never ask for the same; the process's
        ``env`` says which (``metrics_url``)."""
        ports = {metrics_port_variable(spec.name): str(free_port()) for spec in SERVICES if spec.metrics}
        environment = {**ports, **self.env, **(env or {})}
        self.procs[name] = ServiceProcess(name, list(args), environment, self.log_dir)
        return self.procs[name]

    def metrics_url(self, name: str, service: str | None = None) -> str:
        """The /metrics of the process started as ``name`` (``service``: the one it started beside it)."""
        spec_name = service or self.procs[name].args[0]
        return f"http://127.0.0.1:{self.procs[name].env[metrics_port_variable(spec_name)]}/metrics"

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=120)

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name, p in reversed(self.procs.items()):
            t = time.monotonic()
            codes[name] = p.stop()
            print(f"stopped {name} in {time.monotonic() - t:.2f}s")
        return codes

    def all_logs(self) -> str:
        return "\n".join(p.log_path.read_text(errors="replace") for p in self.procs.values())

    def diagnostics(self) -> str:
        alive = [p for p in self.procs.values() if p.alive()]
        sizes = {p.name: p.log_path.stat().st_size for p in alive}
        for p in alive:
            p.dump_stacks()

        def dumped() -> bool:
            """every live service's stacks in its log"""
            return all(STACK_DUMP in p.log_path.read_bytes()[sizes[p.name]:] for p in alive if p.alive())

        try:
            eventually(dumped, timeout=5)
        except AssertionError:
            pass  # a service too stuck to dump its stacks: its log as it is says as much
        return "\n".join(f"--- {name} (alive={p.alive()})\n{p.output()}" for name, p in self.procs.items())


def wait_http(url: str, timeout: float = 30, headers: dict | None = None) -> None:
    """Until ``url`` answers 2xx/3xx (a service is up)."""
    def answers() -> bool:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2):
            return True

    eventually(answers, timeout=timeout, interval=0.2, message=f"{url} to answer")


def get_json(url: str, api_key: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
