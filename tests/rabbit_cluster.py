"""Three RabbitMQ nodes on this machine, joined in one cluster, for the cluster fault tests.

They run beside the system node (``rabbit@localhost`` on 5672, which the other tests use and this
leaves alone): ``wcmlc1..3@localhost`` on AMQP ports 5681-5683 (distribution 25681-25683), each with
its own config file, env file, data, logs, pid file and plugins file under one temporary directory
owned by the ``rabbitmq`` user. The servers run as that user, so they share its Erlang cookie, and
``rabbitmqctl`` (run as root, it switches to that user) reaches each one with ``-n``. They join with
``stop_app``, ``join_cluster``, ``start_app``; ``close`` stops them and removes everything.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.harness import port_open
from tests.waiting import eventually

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
USER = "rabbitmq"
HOST = "localhost"


@dataclass
class Node:
    name: str  # wcmlc1@localhost
    port: int
    dist_port: int
    home: Path
    process: subprocess.Popen | None = None

    @property
    def short(self) -> str:
        return self.name.split("@")[0]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": pwd.getpwnam(USER).pw_dir,  # the rabbitmq user's cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(self.home / "rabbitmq-env.conf"),  # not the system node's
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.home / "advanced.config"),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_PID_FILE": str(self.home / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }


class RabbitCluster:
    """``start()`` boots and joins the nodes; ``url(vhost)`` lists them for WCML_BROKER_URL."""

    def __init__(self, size: int = 3, first_port: int = 5681, prefix: str = "wcmlc"):
        self.ctl = shutil.which("rabbitmqctl")
        if os.geteuid() != 0 or not self.ctl or not Path(SERVER).exists():
            pytest.fail("the RabbitMQ cluster tests start three rabbitmq-server nodes: they need root and "
                        "rabbitmq-server (3.10+) installed", pytrace=False)
        self.base = Path(tempfile.mkdtemp(prefix="wcml-rabbit-cluster-"))
        self.base.chmod(0o755)
        self.nodes = [Node(f"{prefix}{i + 1}@{HOST}", first_port + i, first_port + i + 20000,
                           self.base / f"{prefix}{i + 1}") for i in range(size)]
        busy = [n.name for n in self.nodes
                if port_open("127.0.0.1", n.port) or port_open("127.0.0.1", n.dist_port)]
        if busy:
            shutil.rmtree(self.base, ignore_errors=True)
            pytest.fail(f"ports of {', '.join(busy)} are taken (a node left from an earlier run? stop it "
                        "with rabbitmqctl -n NODE stop)", pytrace=False)

    # -- life cycle -------------------------------------------------------------
    def start(self) -> RabbitCluster:
        user = pwd.getpwnam(USER)
        for node in self.nodes:
            for sub in ("mnesia", "log"):
                (node.home / sub).mkdir(parents=True)
            (node.home / "rabbitmq.conf").write_text(
                f"listeners.tcp.local = 127.0.0.1:{node.port}\n"
                "loopback_users.guest = true\n"
                "log.file.level = info\n")
            (node.home / "rabbitmq-env.conf").write_text("")
            (node.home / "enabled_plugins").write_text("[].\n")
        for path in [self.base, *self.base.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        for node in self.nodes:
            self.boot(node, wait=False)
        for node in self.nodes:
            self.await_node(node)
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            self.rabbitmqctl(node, "stop_app")
            self.rabbitmqctl(node, "join_cluster", seed.name)
            self.rabbitmqctl(node, "start_app")
        self.await_members()
        return self

    def boot(self, node: Node, *, wait: bool = True) -> None:
        """Start the node's Erlang VM and RabbitMQ in it, as the rabbitmq user (a stopped member
        rejoins its cluster by itself)."""
        log = (self.base / f"{node.short}.out").open("ab")
        node.process = subprocess.Popen(["runuser", "-u", USER, "--", SERVER], env=node.env(), cwd=self.base,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        if wait:
            self.await_node(node)

    def await_node(self, node: Node, timeout: float = 180) -> None:
        def up() -> bool:
            assert node.process.poll() is None, f"{node.name} exited: {self.output(node)}"
            self.rabbitmqctl(node, "await_startup", "--timeout", "10", timeout=30)
            return True

        eventually(up, timeout=timeout, interval=1, message=f"{node.name} to start")

    def await_members(self, timeout: float = 60) -> None:
        """Until every node sees every other one running."""
        def joined() -> bool:
            for node in self.nodes:
                status = json.loads(self.rabbitmqctl(node, "cluster_status", "--formatter", "json"))
                assert sorted(status["running_nodes"]) == sorted(n.name for n in self.nodes), status
            return True

        eventually(joined, timeout=timeout, interval=1, message="the nodes to join one cluster")

    def stop_node(self, node: Node) -> None:
        """Stop the node's Erlang VM (``rabbitmqctl stop``): its queue replicas and connections go."""
        self.rabbitmqctl(node, "stop")
        try:
            node.process.wait(60)
        except subprocess.TimeoutExpired:
            self._kill(node)

    def pause(self, node: Node) -> None:
        """``stop_app``: RabbitMQ stops in a VM that stays up, as a node cut off would look to clients."""
        self.rabbitmqctl(node, "stop_app")

    def resume(self, node: Node) -> None:
        self.rabbitmqctl(node, "start_app")
        self.rabbitmqctl(node, "await_startup")

    def suspend_listeners(self, node: Node) -> None:
        """The node refuses new client connections and serves everything else. (Not ``rabbitmq-upgrade
        drain``: tried, with two nodes of three drained no consumer could register on the quorum
        queues.)"""
        self.rabbitmqctl(node, "suspend_listeners")

    def resume_listeners(self, node: Node) -> None:
        self.rabbitmqctl(node, "resume_listeners")

    def close(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                try:
                    self.rabbitmqctl(node, "stop", timeout=60)
                    node.process.wait(60)
                except (subprocess.SubprocessError, AssertionError):
                    pass
                self._kill(node)
        shutil.rmtree(self.base, ignore_errors=True)

    def _kill(self, node: Node) -> None:
        try:
            os.killpg(node.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.process.wait()

    # -- addresses and state ----------------------------------------------------------
    def url(self, vhost: str, nodes: list[Node] | None = None) -> str:
        """The AMQP URLs of ``nodes`` (default: all), comma-separated, as WCML_BROKER_URL takes them."""
        return ",".join(f"amqp://guest:guest@127.0.0.1:{n.port}/{quote(vhost, safe='')}"
                        for n in (nodes or self.nodes))

    def add_vhost(self, name: str) -> str:
        node = self.nodes[0]
        self.rabbitmqctl(node, "add_vhost", name)
        self.rabbitmqctl(node, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return name

    def running(self) -> list[Node]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def queues(self, vhost: str) -> list[dict]:
        """Each queue of ``vhost``: name, type, leader, members, online (asked of a running node)."""
        errors = []
        for node in self.running():
            try:
                return json.loads(self.rabbitmqctl(node, "list_queues", "-p", vhost, "name", "type", "leader",
                                                   "members", "online", "--formatter", "json"))
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"no node lists the queues: {errors}")

    def connections(self) -> dict[str, int]:
        """Client connections per node, the whole cluster's (asked of a running node)."""
        listed = json.loads(self.rabbitmqctl(self.running()[0], "list_connections", "port",
                                             "--formatter", "json"))  # port: the node's AMQP port
        return {n.name: sum(c["port"] == n.port for c in listed) for n in self.nodes}

    def consumed(self, vhost: str) -> set[str]:
        """The queues of ``vhost`` that have a consumer."""
        listed = json.loads(self.rabbitmqctl(self.running()[0], "list_consumers", "-p", vhost, "queue_name",
                                             "--formatter", "json"))
        return {c["queue_name"] for c in listed}

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def leaders(self, vhost: str, queues: list[str]) -> dict[str, str]:
        return {q["name"]: q["leader"] for q in self.queues(vhost) if q["name"] in queues}

    # -- commands ---------------------------------------------------------------------
    def rabbitmqctl(self, node: Node, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([self.ctl, "-q", "-n", node.name, *args], capture_output=True, text=True,
                              timeout=timeout)
        command = f"rabbitmqctl -n {node.name} {' '.join(args)}"
        assert done.returncode == 0, f"{command}: {(done.stderr or done.stdout).strip()[-1500:]}"
        return done.stdout

    def output(self, node: Node) -> str:
        path = self.base / f"{node.short}.out"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
