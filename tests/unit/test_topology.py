"""The system's declaration (``shared/topology.py``) is whole, and what is built from it follows it: the
broker set-up, the CLI's service commands, the embedded pipeline, and the lazy imports of a process."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from services import bootstrap, cli
from shared import topology
from shared.broker import ConsumeOptions
from shared.broker.memory import MemoryBroker
from shared.service import Consumer, Service
from shared.settings import load
from shared.topology import SERVICES, TASK_QUEUE, ServiceSpec

ALL_QUEUES = {q.name for q in topology.QUEUES} | {q.name for s in SERVICES for q in topology.own_queues(s)}


def resolve(path: str):
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def test_every_entry_names_what_exists():
    names = [s.name for s in SERVICES]
    assert len(names) == len(set(names))
    exchanges = {e.name for e in topology.EXCHANGES}
    for spec in SERVICES:
        assert callable(bootstrap.builder(spec)), spec.name
        assert set(spec.publishes) <= exchanges, spec.name
        assert set(spec.needs) <= {topology.BROKER, topology.DATABASE, topology.BLOBS}, spec.name
        assert spec.help and spec.replicas, spec.name
        for other in (spec.beside, *spec.wakes):
            if other:
                assert not topology.service(other).per_task, (spec.name, other)
        for queue in spec.consumes:
            assert (queue == TASK_QUEUE) == spec.per_task or queue.name in ALL_QUEUES, (spec.name, queue)
    for queue in (*topology.QUEUES, TASK_QUEUE, *(q for s in SERVICES for q in s.consumes)):
        assert {exchange for exchange, _ in queue.bindings} <= exchanges, queue.name


def test_every_consumer_names_its_batch_settings():
    for spec in SERVICES:
        if spec.consumes:
            assert isinstance(resolve(spec.batches), ConsumeOptions), spec.name


def test_every_queue_is_read_by_a_service_but_the_dead_letters():
    read = {q.name for s in SERVICES for q in s.consumes}
    assert ALL_QUEUES - read == {topology.DEAD_QUEUE.name}  # `wcml dead list|requeue` reads that one


def test_the_broker_set_up_is_the_declaration():
    declared = []

    class Recording(MemoryBroker):
        def declare(self, exchanges, queues):
            declared.append((tuple(exchanges), tuple(queues)))

    topology.declare(Recording(), ["issuetype"])
    [(exchanges, queues)] = declared
    assert exchanges == topology.EXCHANGES
    assert queues == (*topology.QUEUES, topology.task_queue("issuetype"))
    assert topology.task_queue("issuetype").bindings == ((topology.TASKS_EXCHANGE, "issuetype"),)
    assert topology.ACTIONS_QUEUE not in topology.QUEUES  # declared only where the actions service runs


def test_a_command_for_every_service_given_what_it_and_its_companion_need():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for spec in SERVICES:
        argv = [spec.name, *(["--task", "issuetype"] if spec.per_task else [])]
        args = parser.parse_args(argv)
        assert args.func is cli.run_service and commands[spec.name].description == spec.help
        companion = topology.service(spec.beside).needs if spec.beside else ()
        assert set(args.needs) == {*spec.needs, *companion} and tuple(args.requires) == spec.requires
        if spec.http:
            assert args.bind == f"127.0.0.1:{spec.http}"
        if spec.beside:
            assert parser.parse_args([*argv, f"--no-{spec.beside}"])


def test_a_process_imports_no_service_but_the_one_it_runs():
    """Parsing, the wiring and every builder's lookup import no service package (the predictor's model
    libraries cost about 300 MiB); a builder imports its own when called."""
    packages = ("ingest", "dispatcher", "predictor", "store", "actions", "api")
    code = ("import sys\nfrom services import cli, bootstrap, distributed, commands\n"
            "from shared import topology\n"
            "cli.build_parser()\n[bootstrap.builder(s) for s in topology.SERVICES]\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'torch')\n"
            f"             or m.split('.')[:2] in (['services', p] for p in {packages})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- building from the declaration --------------------------------------------------

def echo(a, task: str, wake=None) -> Service:
    """A per-task service for the tests below: it reads its task's queue."""
    return Service(f"echo-{task}", consumers=(Consumer(topology.task_queue(task).name, lambda _: []),),
                   tasks=(task,))


def two_queues(a) -> Service:
    return Service("wrong", consumers=(Consumer("events.dispatcher", lambda _: []),
                                       Consumer("results.store", lambda _: [])))


ECHO = ServiceSpec("echo", "echo", builder=f"{__name__}:echo", consumes=(TASK_QUEUE,), per_task=True,
                   replicas="any")


@pytest.fixture
def adapters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load({"WCML_BROKER_URL": "memory://", "WCML_DATABASE_URL": f"sqlite:///{tmp_path}/wcml.db",
                     "WCML_BLOB_URL": f"file://{tmp_path}/blobs", "WCML_WEBHOOK_SECRETS": "s",
                     "WCML_API_KEYS": "k"})
    a = bootstrap.Adapters(settings)
    yield a
    a.close()


def test_a_built_service_must_consume_what_its_entry_declares(adapters):
    wrong = ServiceSpec("wrong", "wrong", builder=f"{__name__}:two_queues", consumes=(topology.EVENTS_QUEUE,))
    said = (r"wrong consumes \['events.dispatcher', 'results.store'\]; "
            r"its declaration .* says \['events.dispatcher'\]")
    with pytest.raises(bootstrap.TopologyError, match=said):
        bootstrap.build(wrong, adapters)


def test_the_embedded_pipeline_is_every_embedded_entry_with_its_embedded_options(adapters, monkeypatch):
    """The predictor stands in for a cheap per-task service (echo): no model is trained here."""
    declared = tuple(ECHO if s.per_task else s for s in SERVICES)
    monkeypatch.setattr(topology, "SERVICES", declared)
    services = bootstrap.pipeline(adapters)
    tasks = bootstrap.routed_tasks(adapters)
    expected = [name for s in declared if s.embedded for name, _ in topology.instances(s, tasks)]
    assert [s.name for s in services] == expected
    by_name = {s.name: s for s in services}
    assert [name for name, _ in by_name["store"].loops] == ["latest-documents"]  # the follower in-thread
    assert "latest" not in by_name
    actions = by_name["actions"]
    assert topology.ACTIONS_QUEUE in actions.queues  # its own queue, declared where it runs
    assert {c.queue for s in services for c in s.consumers} == (
        ALL_QUEUES - {topology.DEAD_QUEUE.name} | {f"tasks.{t}" for t in tasks})


def test_in_one_process_a_webhook_wakes_the_relay(adapters, monkeypatch):
    woken = []
    relay = topology.service("relay")
    monkeypatch.setattr(topology, "SERVICES", (topology.service("ingest"), relay))
    real = bootstrap.build

    def build(spec, a, task=None, **options):
        service = real(spec, a, task, **options)
        return replace(service, wake=lambda: woken.append(spec.name)) if spec is relay else service

    monkeypatch.setattr(bootstrap, "build", build)
    ingest, _ = bootstrap.pipeline(adapters)
    from services.samples import issue_payload, signed_request
    from shared.http import app_for

    app = app_for("t", [ingest.blueprint()], ingest.ping).test_client()
    request = signed_request("http://x/webhooks/github", "s", "issues", issue_payload(number=1))
    answer = app.post("/webhooks/github", data=request.data, headers=dict(request.header_items()))
    assert answer.status_code == 202, answer.data
    assert woken == ["relay"]
