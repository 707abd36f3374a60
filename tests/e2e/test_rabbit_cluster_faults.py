"""Fault tests on a three-node RabbitMQ cluster: the node leading the queues stopped under load, a
follower stopped, a node paused (``stop_app``) for 20 s.

The distributed pipeline runs once for the three phases, every service given the three nodes in
WCML_BROKER_URL; its quorum queues get 3 replicas (RabbitMQ's default, checked); nothing is
restarted by hand. Each phase sends 50 webhooks/s with its own delivery ids and counts its own
deliveries against the stored predictions (tests/faults.py): lost 0, duplicated 0, unexpected 0.
Reports land in tests/output/faults/.
"""

import time
from collections import Counter

import pytest

from shared import topology
from shared.broker.dead_letters import listing
from shared.broker.rabbitmq import RabbitBroker
from tests.faults import TASKS, FaultPipeline, check
from tests.harness import unique
from tests.rabbit_cluster import RabbitCluster
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

RATE = 50  # webhooks/s
LEAD_IN = 5  # s of traffic before each fault, and after it is over
QUEUES = ["events.dispatcher", *(f"tasks.{t}" for t in TASKS), "results.store"]


@pytest.fixture(scope="module")
def cluster():
    c = RabbitCluster()
    try:
        yield c.start()
    except BaseException:
        for node in c.nodes:
            print(f"--- {node.name}\n{c.output(node)}")
        raise
    finally:
        c.close()


@pytest.fixture(scope="module")
def vhost(cluster):
    return cluster.add_vhost(unique("wcml-cluster"))


@pytest.fixture(scope="module")
def pipeline(cluster, vhost, _databases, s3_endpoint, tmp_path_factory):
    # The harshest start for the first fault: one node leads every queue and serves every client.
    # Declared through that node alone, the queues' leaders are there (client-local placement); with
    # the other nodes refusing connections while the services connect, the services are there too
    # (each keeps to the node that answered), and stay after the others take connections again.
    first, others = cluster.nodes[0], cluster.nodes[1:]
    seed = RabbitBroker(cluster.url(vhost, [first]))
    topology.declare(seed, TASKS)
    seed.close()
    pg_url = _databases.create()
    log_dir = tmp_path_factory.mktemp("cluster-services")
    env = {"WCML_BROKER_URL": cluster.url(vhost), "WCML_DATABASE_URL": pg_url,
           "WCML_BLOB_URL": f"s3://{s3_endpoint.create_bucket()}/wcml",
           "WCML_MODELS_DIR": str(log_dir / "models"), **s3_endpoint.env}
    p = FaultPipeline(env, log_dir, pg_url, rabbit_node=first.name)
    try:
        for node in others:
            cluster.suspend_listeners(node)
        try:
            p.start_all()
            consumed = []

            def connected() -> bool:
                consumed[:] = sorted(cluster.consumed(vhost))
                return set(QUEUES) <= set(consumed)

            eventually(connected, timeout=60, interval=0.5,
                       message=lambda: f"a consumer on every pipeline queue (consumed: {consumed})")
        finally:
            for node in others:
                cluster.resume_listeners(node)
        yield p
    except BaseException:
        print(p.diagnostics())
        raise
    finally:
        codes = p.close()
    if any(codes.values()):
        print(codes, p.diagnostics())
    assert not any(codes.values()), codes


def replicated(cluster, vhost) -> dict[str, str]:
    """Every pipeline queue is a quorum queue with a replica on each of the 3 nodes, all online;
    returns each queue's leader."""
    queues = {q["name"]: q for q in cluster.queues(vhost) if q["name"] in QUEUES}
    assert sorted(queues) == sorted(QUEUES), queues
    names = sorted(n.name for n in cluster.nodes)
    for q in queues.values():
        assert q["type"] == "quorum" and sorted(q["members"]) == names, q
        assert sorted(q["online"]) == names, q
    return {name: q["leader"] for name, q in queues.items()}


def run_phase(name, pipeline, cluster, vhost, fault) -> dict:
    """Traffic at RATE/s; after LEAD_IN s, ``fault(report)``; LEAD_IN s more of traffic; then wait
    for the pipeline to settle and count this phase's deliveries."""
    before = pipeline.predictions()
    leaders_before = replicated(cluster, vhost)
    load = pipeline.load(rate=RATE, prefix=f"cluster-{name}")
    sender = load.run(count=RATE * 600)  # ended below, LEAD_IN s after the fault
    extra = {"rate": RATE, "leaders_before": leaders_before}
    try:
        time.sleep(LEAD_IN)  # the fault's schedule, not a wait
        started = time.monotonic()
        fault(extra)
        extra["fault_seconds"] = round(time.monotonic() - started, 1)
        time.sleep(LEAD_IN)  # traffic after the node is back
    finally:
        load.stop.set()
        sender.join(180)
    settling = time.monotonic()
    pipeline.wait_for(len(load.accepted) * len(TASKS), timeout=240)
    extra["settle_seconds"] = round(time.monotonic() - settling, 1)  # last webhook to nothing in flight
    extra["leaders_after"] = cluster.leaders(vhost, QUEUES)
    dead = [p.name for p in pipeline.procs.values() if not p.alive()]
    assert not dead, f"services that stopped: {dead}"
    broker = RabbitBroker(cluster.url(vhost))
    extra["dead_lettered"] = broker.queue_depth("dead")  # all phases so far: nothing should be there
    # why, if any: which queue, which reason (a delivery limit's x-death, or a consumer's own)
    extra["dead_reasons"] = dict(Counter(f"{d['queue']}: {d['reason']}" for d in listing(broker, 1000)))
    broker.close()
    rows = [r for r in pipeline.predictions() if r[0].startswith(f"{load.prefix}-")]
    assert len(pipeline.predictions()) == len(before) + len(rows), "another phase's predictions changed"
    report = check(f"rabbit_cluster_{name}", load, rows, extra)
    assert report["accepted"] == report["attempted"], report
    assert (report["lost"], report["duplicated"], report["unexpected"]) == (0, 0, 0), \
        f"dead letters {report['dead_reasons']}; {report}"
    assert report["dead_lettered"] == 0, f"dead letters {report['dead_reasons']}; {report}"
    replicated(cluster, vhost)  # the restarted node is back in every queue
    return report


def busiest(cluster, vhost, nodes=None):
    """Of ``nodes`` (default: all), the one serving the most client connections, then leading the most
    pipeline queues."""
    leaders = list(replicated(cluster, vhost).values())
    connections = cluster.connections()
    return max(nodes or cluster.nodes, key=lambda n: (connections[n.name], leaders.count(n.name)))


def test_the_node_leading_the_queues_stopped_under_load_and_started_again(cluster, vhost, pipeline):
    def fault(extra):
        leaders = list(replicated(cluster, vhost).values())
        node = cluster.node(max(set(leaders), key=leaders.count))
        extra["stopped"] = node.name
        extra["connections_before"] = cluster.connections()
        cluster.stop_node(node)
        time.sleep(15)  # the fault itself: the leader's node down for 15 s (plus its stop and boot)
        cluster.boot(node)

    run_phase("leader_stopped", pipeline, cluster, vhost, fault)


def test_a_follower_node_stopped_under_load_and_started_again(cluster, vhost, pipeline):
    def fault(extra):
        leaders = set(replicated(cluster, vhost).values())
        followers = [n for n in cluster.nodes if n.name not in leaders]
        assert followers, f"every node leads a queue: {leaders}"
        node = busiest(cluster, vhost, followers)
        extra["stopped"] = node.name
        extra["connections_before"] = cluster.connections()
        cluster.stop_node(node)
        time.sleep(15)  # the fault itself: a follower down for 15 s (plus its stop and boot)
        cluster.boot(node)

    run_phase("follower_stopped", pipeline, cluster, vhost, fault)


def test_a_node_paused_with_stop_app_for_20_seconds(cluster, vhost, pipeline):
    def fault(extra):
        node = busiest(cluster, vhost)
        extra["paused"] = node.name
        extra["connections_before"] = cluster.connections()
        cluster.pause(node)
        try:
            time.sleep(20)  # the fault itself: the node's RabbitMQ stopped for 20 s, its VM up
        finally:
            cluster.resume(node)

    run_phase("node_paused_20s", pipeline, cluster, vhost, fault)
