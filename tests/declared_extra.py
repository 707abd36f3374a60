"""A service declared by a test, to show what declaring one gives: ``audit``, a trivial consumer of a
queue of its own (``results.audit``, every prediction) that appends what it reads to the file
``WCML_AUDIT_FILE`` names.

``declare`` adds it to the system's declaration in this process; run as ``python -m
tests.declared_extra ARGS``, this module is ``wcml ARGS`` with it declared (the distributed process
``audit``, or ``run``: the embedded mode with it inside).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from shared import topology
from shared.broker import ConsumeOptions
from shared.broker.port import Queue
from shared.service import Consumer, Service

AUDIT_QUEUE = Queue("results.audit", ((topology.RESULTS_EXCHANGE, "#"),))
OPTIONS = ConsumeOptions(prefetch=10, max_batch=10)
AUDIT = topology.ServiceSpec(
    "audit", "append every prediction to WCML_AUDIT_FILE (a service a test declares)",
    builder="tests.declared_extra:build", consumes=(AUDIT_QUEUE,), needs=(topology.BROKER,),
    batches="tests.declared_extra:OPTIONS", replicas="one: it appends to one file")


def build(a) -> Service:
    path = Path(os.environ["WCML_AUDIT_FILE"])

    def handle(deliveries):
        with path.open("a") as out:
            for d in deliveries:
                out.write(json.dumps({"key": d.routing_key, "body": d.body.decode()}) + "\n")
        return []

    return Service("audit", consumers=(Consumer(AUDIT_QUEUE.name, handle, OPTIONS),))


def declare() -> tuple[topology.ServiceSpec, ...]:
    """Add ``audit`` to the declaration; the services as they were before."""
    before = topology.SERVICES
    topology.SERVICES = (*before, AUDIT)
    return before


def audited(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


if __name__ == "__main__":
    from services import cli

    declare()
    sys.exit(cli.main(sys.argv[1:]))
