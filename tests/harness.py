"""Real services for tests: RabbitMQ vhosts, PostgreSQL databases, an S3 endpoint.

Order of preference for each: an explicit URL (WCML_TEST_AMQP_URL /
WCML_TEST_DATABASE_URL), then containers where a Docker engine answers, then
the local services. When none is reachable the test fails saying what to start.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from contextlib import closing
from urllib.parse import quote, unquote, urlparse, urlunparse

import pytest


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with closing(socket.create_connection((host, port), timeout=timeout)):
            return True
    except OSError:
        return False


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker_available() -> bool:
    if not (os.environ.get("DOCKER_HOST") or os.path.exists("/var/run/docker.sock")):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# -- RabbitMQ ---------------------------------------------------------------

class VhostManager:
    """Create and delete vhosts through the management API, else rabbitmqctl.

    ``node``: a node of a cluster started by the tests (tests/rabbit_cluster.py), asked with
    ``rabbitmqctl -n`` only (the management API on 15672 is the system node's)."""

    def __init__(self, base_url: str, management_port: int = 15672, node: str | None = None):
        from shared.broker.urls import split_broker_urls

        self.base = urlparse(split_broker_urls(base_url)[0])
        self.node = node
        self.api = f"http://{self.base.hostname}:{management_port}/api"
        auth = f"{self.base.username or 'guest'}:{self.base.password or 'guest'}"
        self.auth = "Basic " + base64.b64encode(auth.encode()).decode()

    def _request(self, method: str, path: str, body=None):
        return urllib.request.Request(self.api + path, method=method,
                                      data=None if body is None else json.dumps(body).encode(),
                                      headers={"Authorization": self.auth,
                                               "content-type": "application/json"})

    def _http(self, method: str, path: str, body=None) -> bool:
        if self.node:
            return False
        try:
            urllib.request.urlopen(self._request(method, path, body), timeout=5).close()
            return True
        except (urllib.error.URLError, OSError):
            return False

    def _get_json(self, path: str):
        """The management API's answer, or None where it does not answer."""
        if self.node:
            return None
        try:
            with urllib.request.urlopen(self._request("GET", path), timeout=10) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def _ctl_path(self) -> str | None:
        """rabbitmqctl, where it reaches the broker of the URL (the local node on its usual port)."""
        ctl = shutil.which("rabbitmqctl")
        local = self.base.hostname in ("127.0.0.1", "localhost") and (self.base.port or 5672) == 5672
        return ctl if ctl and (local or self.node) else None

    def _node_args(self) -> list[str]:
        return ["-n", self.node] if self.node else []

    def _ctl(self, *args: str) -> bool:
        ctl = self._ctl_path()
        if not ctl:
            return False
        return subprocess.run([ctl, "-q", *self._node_args(), *args], capture_output=True,
                              timeout=60).returncode == 0

    def _ctl_json(self, *args: str):
        """rabbitmqctl's JSON answer, or None where rabbitmqctl cannot be used or fails."""
        ctl = self._ctl_path()
        if not ctl:
            return None
        done = subprocess.run([ctl, "-q", *self._node_args(), *args, "--formatter", "json"],
                              capture_output=True, text=True, timeout=60)
        return json.loads(done.stdout or "[]") if done.returncode == 0 else None

    def queue_names(self, name: str) -> list[str]:
        """The queues of vhost ``name`` (management API, else rabbitmqctl)."""
        listed = self._get_json(f"/queues/{quote(name, safe='')}?columns=name")
        if listed is None:
            listed = self._ctl_json("list_queues", "-p", name, "name")
        if listed is None:
            raise RuntimeError(f"cannot list the queues of vhost {name!r}: neither the management API "
                               "nor rabbitmqctl answers")
        return [q["name"] for q in listed]

    def unacknowledged(self, name: str) -> int:
        """Messages delivered to consumers on vhost ``name`` and not acknowledged yet.

        rabbitmqctl asks every channel, so the count is exact now; it is preferred where it can
        be used. Else the management API's per-queue messages_unacknowledged, which for a quorum
        queue is sampled every few seconds (collect_statistics_interval) and may lag by that much.
        """
        if self._ctl_path():
            channels = self._ctl_json("list_channels", "vhost", "messages_unacknowledged")
            if channels is None:
                raise RuntimeError("rabbitmqctl list_channels failed (is the broker running?)")
            return sum(c["messages_unacknowledged"] for c in channels if c["vhost"] == name)
        queues = self._get_json(f"/queues/{quote(name, safe='')}?columns=name,messages_unacknowledged")
        if queues is None:
            raise RuntimeError(f"cannot count unacknowledged messages on vhost {name!r}: the "
                               "management API does not answer")
        return sum(q.get("messages_unacknowledged") or 0 for q in queues)

    def create(self, name: str) -> str:
        user = self.base.username or "guest"
        vh = quote(name, safe="")
        ok = (self._http("PUT", f"/vhosts/{vh}")
              and self._http("PUT", f"/permissions/{vh}/{quote(user)}",
                             {"configure": ".*", "write": ".*", "read": ".*"}))
        if not ok:
            ok = self._ctl("add_vhost", name) and self._ctl("set_permissions", "-p", name, user,
                                                              ".*", ".*", ".*")
        if not ok:
            pytest.fail(f"cannot create a RabbitMQ vhost on {self.base.hostname}: enable the management "
                        "plugin (rabbitmq-plugins enable rabbitmq_management) or run as a user that "
                        "may call rabbitmqctl", pytrace=False)
        return urlunparse(self.base._replace(path="/" + vh))

    def delete(self, name: str) -> None:
        if not self._http("DELETE", f"/vhosts/{quote(name, safe='')}"):
            self._ctl("delete_vhost", name)


def await_handshake(amqp_url: str, timeout: float = 300.0) -> None:
    """Wait until RabbitMQ completes a connection's handshake on ``amqp_url``. After a broker restart
    (the fault tests make several) RabbitMQ recovers every vhost the session has created and their
    quorum queues before it answers new connections promptly; a test that starts in that window
    waits here instead of failing on its first connection."""
    import pika
    from pika.adapters.utils.connection_workflow import AMQPConnectorException

    params = pika.URLParameters(amqp_url)
    params.connection_attempts, params.socket_timeout, params.stack_timeout = 1, 5.0, 30.0
    deadline = time.monotonic() + timeout
    while True:
        try:
            pika.BlockingConnection(params).close()
            return
        except (pika.exceptions.AMQPError, AMQPConnectorException, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names ("/" when it names none)."""
    return unquote(urlparse(amqp_url).path[1:]) or "/"


def rabbit_base_url(stack) -> str:
    url = os.environ.get("WCML_TEST_AMQP_URL")
    if url:
        return url
    if port_open("127.0.0.1", 5672):
        return "amqp://guest:guest@127.0.0.1:5672/"
    if docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = stack.enter_context(RabbitMqContainer("rabbitmq:4.2-management"))
        host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
        return f"amqp://guest:guest@{host}:{port}/"
    pytest.fail("RabbitMQ is not reachable at 127.0.0.1:5672 and no Docker engine answers: start it "
                "(rabbitmq-server -detached) or set WCML_TEST_AMQP_URL", pytrace=False)


# -- PostgreSQL -------------------------------------------------------------

def postgres_admin_url(stack) -> str:
    url = os.environ.get("WCML_TEST_DATABASE_URL")
    if url:
        return url
    if port_open("127.0.0.1", 5432):
        return "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        container = stack.enter_context(PostgresContainer("postgres:16-alpine", driver="psycopg2"))
        return container.get_connection_url()
    pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and no Docker engine answers: start it "
                "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set "
                "WCML_TEST_DATABASE_URL", pytrace=False)


class DatabaseFactory:
    """Fresh databases copied from one migrated template: isolation at ~50 ms a test."""

    def __init__(self, admin_url: str, prefix: str = "wcml_test"):
        import sqlalchemy as sa

        from shared.database import migrate

        self.sa = sa
        self.prefix = prefix
        self.admin_url = sa.engine.make_url(admin_url)
        self.admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        self.template = unique("wcml_tpl")
        self.created = [self.template]
        self._execute(f'CREATE DATABASE "{self.template}"')
        migrate(self.url_of(self.template))

    def url_of(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(self.sa.text(sql))

    def create(self) -> str:
        name = unique(self.prefix)
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return self.url_of(name)

    def drop_all(self) -> None:
        for name in reversed(self.created):
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


# -- S3 -----------------------------------------------------------------------

class S3Endpoint:
    """moto's S3 server on a free loopback port, in this test process."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def create_bucket(self) -> str:
        name = unique("wcml").replace("_", "-")
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.server.stop()


class RabbitControl:
    """Stop and start the local RabbitMQ application (the Erlang node stays up) for fault tests."""

    def __init__(self, amqp_url: str):
        host = urlparse(amqp_url).hostname
        self.ctl = shutil.which("rabbitmqctl")
        if os.environ.get("WCML_TEST_AMQP_URL") or host not in ("127.0.0.1", "localhost") or not self.ctl:
            pytest.fail("this fault test stops and starts RabbitMQ: it needs the local broker and "
                        "rabbitmqctl (unset WCML_TEST_AMQP_URL, run where rabbitmq-server is installed)",
                        pytrace=False)

    def _run(self, *args: str) -> None:
        subprocess.run([self.ctl, "-q", *args], check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        self._run("stop_app")

    def start(self) -> None:
        self._run("start_app")
        self._run("await_startup")
