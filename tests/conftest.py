"""Fixtures: each test gets real services, fresh and cleaned up (see tests/harness.py)."""

from __future__ import annotations

import contextlib
import os
import time

import pytest

from tests import harness


@pytest.fixture(scope="session")
def _stack():
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def _vhosts(_stack):
    manager = harness.VhostManager(harness.rabbit_base_url(_stack))
    names: list[str] = []
    yield manager, names
    for name in names:
        manager.delete(name)


@pytest.fixture
def amqp_url(_vhosts):
    """A fresh RabbitMQ vhost for this test, deleted when the test ends: a broker restarted by a later
    test recovers only the vhosts that exist, and before it has it answers no new connection."""
    if os.environ.get("WCML_TEST_AMQP_URL"):
        yield os.environ["WCML_TEST_AMQP_URL"]
        return
    manager, names = _vhosts
    name = harness.unique("wcml-test")
    names.append(name)
    url = manager.create(name)
    harness.await_handshake(url)
    yield url
    manager.delete(name)
    names.remove(name)


@pytest.fixture(scope="session")
def _databases(_stack):
    factory = harness.DatabaseFactory(harness.postgres_admin_url(_stack))
    yield factory
    factory.drop_all()


@pytest.fixture
def pg_url(_databases) -> str:
    """A fresh, migrated PostgreSQL database for this test."""
    return _databases.create()


@pytest.fixture
def pg_engine(pg_url):
    """An engine on this test's fresh PostgreSQL database, disposed after it."""
    from shared.database import create_engine

    engine = create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    from shared.database import migrate

    url = f"sqlite:///{tmp_path}/wcml.db"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def s3_endpoint():
    endpoint = harness.S3Endpoint()
    saved = {k: os.environ.get(k) for k in endpoint.env}
    os.environ.update(endpoint.env)
    yield endpoint
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    endpoint.stop()


@pytest.fixture
def s3_url(s3_endpoint) -> str:
    """``s3://<fresh bucket>/wcml`` on the loopback S3 endpoint (AWS_* variables are set)."""
    return f"s3://{s3_endpoint.create_bucket()}/wcml"


@pytest.fixture
def sqlite_engine(tmp_path):
    """A migrated SQLite database in the test's tmp dir (the embedded mode's database)."""
    from shared.database import create_engine, migrate

    url = f"sqlite:///{tmp_path}/wcml.db"
    migrate(url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


_STARTED = time.time()  # reports older than this run are not its own


def pytest_terminal_summary(terminalreporter):
    """The counts of every fault and hostile-input report this run wrote (tests/output/faults/), one
    line each, so a CI log shows them even when the tests pass quietly."""
    import json
    from pathlib import Path

    reports = sorted(p for p in (Path(__file__).parent / "output" / "faults").glob("*.json")
                     if p.stat().st_mtime >= _STARTED)
    if reports:
        terminalreporter.section("fault and hostile-input counts")
        for path in reports:
            counts = json.loads(path.read_text())
            shown = {k: v for k, v in counts.items() if not isinstance(v, (dict, list))}
            terminalreporter.write_line(f"{path.stem}: {json.dumps(shown)}")
