"""A process's own /metrics and /healthz (``shared.metrics_server``), the port each declared service
serves them on (``shared/topology.py``), and the setting and flag that move it."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from contextlib import closing

import pytest

from services.cli import build_parser
from shared import metrics, topology
from shared.metrics_server import PortInUse, serving
from shared.settings import SettingsError, metrics_port, metrics_port_variable
from tests.harness import free_port


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_it_serves_this_process_registry_and_its_health():
    counter = metrics.counter("wcml_test_server_checks_total", "a test's counter")
    counter.inc(3)
    port = free_port()
    with serving(port, lambda: None, host="127.0.0.1") as bound:
        assert bound == port
        status, content_type, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and content_type.startswith("text/plain")
        assert "wcml_test_server_checks_total 3.0" in body.decode()
        assert "process_resident_memory_bytes" in body.decode()  # one process: its own memory too
        assert get(f"http://127.0.0.1:{port}/healthz")[::2] == (200, b'{"status": "ok"}')
        assert get(f"http://127.0.0.1:{port}/other")[0] == 404
    with pytest.raises(OSError), closing(socket.create_connection(("127.0.0.1", port), timeout=1)):
        pass  # stopped with the block


def test_healthz_answers_503_naming_what_failed():
    def ping():
        raise ConnectionRefusedError("the broker is down")

    port = free_port()
    with serving(port, ping, host="127.0.0.1"):
        status, content_type, body = get(f"http://127.0.0.1:{port}/healthz")
    assert (status, content_type) == (503, "application/json")
    assert json.loads(body) == {"status": "unavailable", "error": "ConnectionRefusedError"}


def test_a_taken_port_stops_the_process_in_one_line_and_no_port_serves_nothing():
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"metrics port {port} is in use"):
            with serving(port, lambda: None, host="127.0.0.1"):
                pass
    for nothing in (None, 0):
        with serving(nothing, lambda: None) as bound:
            assert bound is None


def test_every_process_but_an_http_one_declares_a_metrics_port_of_its_own():
    ports = {}
    for spec in topology.SERVICES:
        port = spec.http or spec.metrics
        assert port, f"{spec.name} serves /metrics nowhere"
        assert not (spec.http and spec.metrics), f"{spec.name}: an HTTP service serves /metrics on `http`"
        assert port not in ports, f"{spec.name} and {ports.get(port)} share {port}"
        ports[port] = spec.name


def test_the_port_is_moved_by_a_variable_of_its_service_or_the_flag(monkeypatch):
    assert metrics_port_variable("api-views") == "WCML_API_VIEWS_METRICS_PORT"
    monkeypatch.delenv("WCML_LATEST_METRICS_PORT", raising=False)
    assert metrics_port("latest", 9415) == 9415
    monkeypatch.setenv("WCML_LATEST_METRICS_PORT", "19415")
    assert metrics_port("latest", 9415) == 19415
    monkeypatch.setenv("WCML_LATEST_METRICS_PORT", "0")
    assert metrics_port("latest", 9415) == 0
    for bad in ("http", "-1", "70000"):
        monkeypatch.setenv("WCML_LATEST_METRICS_PORT", bad)
        with pytest.raises(SettingsError, match="WCML_LATEST_METRICS_PORT"):
            metrics_port("latest", 9415)
    parser = build_parser()
    assert parser.parse_args(["dispatcher", "--metrics-port", "19412"]).metrics_port == 19412
    assert parser.parse_args(["store"]).metrics_port is None  # then the variable, else the declared port
    with pytest.raises(SystemExit):
        parser.parse_args(["ingest", "--metrics-port", "1"])  # its /metrics are on its HTTP port
