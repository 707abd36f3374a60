"""Composition root: the adapters the settings name, and each service built from the system's
declaration (``shared/topology.py``).

``build`` makes one entry's ``Service`` with the builder it names (``services/builders.py``), imported
only then; ``pipeline`` builds every entry the embedded mode runs. The distributed processes
(``services/distributed.py``, one entry each) and the embedded mode (``services/embedded.py``, all
in one) are its only callers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property

from shared import topology
from shared.blobs import BlobStore, open_blob_store
from shared.broker import Broker, connect
from shared.database import create_engine, migrate
from shared.service import Service
from shared.settings import Settings, SettingsError
from shared.topology import ServiceSpec


class TopologyError(RuntimeError):
    """A built service does not match its entry in the declaration."""


class Adapters:
    """What the ports are connected to in this process, each opened on first use."""

    def __init__(self, settings: Settings, *, broker: Broker | None = None):
        self.settings = settings
        if broker is not None:
            self.broker = broker

    @cached_property
    def engine(self):
        if not self.settings.database_url:  # a command that needs it only on some paths asks for it here
            raise SettingsError("WCML_DATABASE_URL", "is not set")
        return create_engine(self.settings.database_url)

    @cached_property
    def migrated_engine(self):
        """The engine, once the schema is up to date: every service that writes tables migrates at start
        (commands that only read do not)."""
        engine = self.engine  # a missing URL is said in one line first
        migrate(self.settings.database_url)
        return engine

    @cached_property
    def broker(self) -> Broker:
        broker = connect(self.settings.broker_url)
        topology.declare(broker)
        return broker

    @cached_property
    def blobs(self) -> BlobStore:
        return open_blob_store(self.settings.blob_url)

    def close(self) -> None:
        if "broker" in self.__dict__:
            self.broker.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


def builder(spec: ServiceSpec) -> Callable[..., Service]:
    """The function ``spec.builder`` names ("module:function"), its module imported now."""
    module, _, name = spec.builder.partition(":")
    return getattr(importlib.import_module(module), name)


def build(spec: ServiceSpec, a: Adapters, task: str | None = None, **options) -> Service:
    """One instance of ``spec`` (of ``task``'s, for a service run per task), ``options`` given to its
    builder. Refused when what it consumes is not what the declaration says; the queues only it reads
    are declared where it runs."""
    service = builder(spec)(a, **({"task": task} if spec.per_task else {}), **options)
    declared = sorted(q.name for q in topology.consumed(spec, task))
    built = sorted(c.queue for c in service.consumers)
    if built != declared:
        raise TopologyError(f"{spec.name} consumes {built or 'nothing'}; its declaration "
                            f"(shared/topology.py) says {declared or 'nothing'}")
    own = tuple(q for q in topology.own_queues(spec) if q not in service.queues)
    return replace(service, queues=(*service.queues, *own)) if own else service


def routed_tasks(a: Adapters) -> list[str]:
    from shared.event_routes import load_rules, tasks_of

    return tasks_of(load_rules(a.settings.routes_file))


def pipeline(a: Adapters) -> list[Service]:
    """Every service the embedded mode runs, in the declaration's order: each with its embedded
    options, a service run per task once per routed task, and the services another ``wakes`` woken
    directly by it."""
    tasks, built, services = routed_tasks(a), {}, []
    for spec in topology.SERVICES:
        if not spec.embedded:
            continue
        options = dict(spec.embedded_options)
        if spec.wakes:
            options["wake"] = _waking(built, spec.wakes)
        for name, task in topology.instances(spec, tasks):
            built[name] = build(spec, a, task, **options)
            services.append(built[name])
    return services


def _waking(built: dict[str, Service], names: tuple[str, ...]) -> Callable[[], None]:
    def wake() -> None:  # looked up when called: the services it wakes may be built after it
        for name in names:
            if name in built:
                built[name].wake()

    return wake
