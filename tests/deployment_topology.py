"""compose.yaml and the Kubernetes manifests held to the system's declaration (``shared/topology.py``).

``differences`` lists, a line each, where a deployment and the declaration part:

- every declared service runs: in a unit of its own (compose service ``<name>``, Deployment
  ``wcml-<name>``; ``<name>-<task>`` for each routed task of a service run per task), or beside the
  unit of the service whose entry starts it (unless that unit runs with ``--no-<service>``);
- nothing extra: no unit runs a command that is neither a declared service nor a declared job, a
  task no route names, or a service under another unit's name;
- every queue the files name (KEDA's triggers) is declared, and the unit it scales reads it.

A unit is a compose service built from or running our image, or a Kubernetes workload whose container
runs ``wcml``; infrastructure (RabbitMQ, PostgreSQL, MinIO) is neither.

``metrics_port_differences`` lists where a unit does not offer the port on which each process it runs
serves /metrics (an HTTP service's ``--metrics-bind`` port, else its ``http`` port; any other's
``metrics`` port; a process beside another's too): compose exposes it; on Kubernetes the container
declares it, named ``http``, ``metrics`` or, for the process beside, ``metrics-<the last word of its
name>``, and the pod is
annotated ``prometheus.io/scrape: "true"`` (deploy/observability/prometheus-kubernetes.yaml).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared import topology

KUBERNETES_PREFIX = "wcml-"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


@dataclass(frozen=True)
class Unit:
    name: str  # as the file names it, without the Kubernetes prefix
    command: tuple[str, ...]  # the `wcml` arguments


def differences(compose: dict, manifests: Sequence[dict], tasks: Sequence[str]) -> list[str]:
    """compose.yaml (parsed) and the manifests (documents, as rendered) against the declaration,
    with ``tasks`` the routed tasks."""
    return [*_compare("compose.yaml", compose_units(compose), {}, tasks, prefix=""),
            *_compare("deploy", kubernetes_units(manifests), scaled_queues(manifests), tasks,
                      prefix=KUBERNETES_PREFIX)]


def compose_units(compose: dict) -> list[Unit]:
    units = []
    for name, service in (compose.get("services") or {}).items():
        ours = str(service.get("image", "")).startswith("wcml-") or "build" in service
        if ours and service.get("command"):
            units.append(Unit(name, tuple(map(str, service["command"]))))
    return units


def kubernetes_units(manifests: Iterable[dict]) -> list[Unit]:
    units = []
    for doc in manifests:
        if doc.get("kind") not in WORKLOADS:
            continue
        spec = doc["spec"]
        pod = (spec["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else spec)["template"]["spec"]
        for container in pod["containers"]:
            command = [*container.get("command", []), *container.get("args", [])]
            if command[:1] == ["wcml"]:
                name = doc["metadata"]["name"].removeprefix(KUBERNETES_PREFIX)
                units.append(Unit(name, tuple(command[1:])))
    return units


def scaled_queues(manifests: Iterable[dict]) -> dict[str, list[tuple[str, str]]]:
    """KEDA's scalers: the workload each scales (without the prefix) -> (scaler, queue) of its triggers."""
    scaled: dict[str, list[tuple[str, str]]] = {}
    for doc in manifests:
        if doc.get("kind") != "ScaledObject":
            continue
        target = doc["spec"]["scaleTargetRef"]["name"].removeprefix(KUBERNETES_PREFIX)
        for trigger in doc["spec"].get("triggers", []):
            queue = trigger.get("metadata", {}).get("queueName")
            if queue:
                scaled.setdefault(target, []).append((doc["metadata"]["name"], queue))
    return scaled


def _compare(where: str, units: list[Unit], scaled: dict[str, list[tuple[str, str]]], tasks: Sequence[str],
             prefix: str) -> list[str]:
    found: list[str] = []
    running: set[str] = set()
    reads: dict[str, set[str]] = {}  # unit name -> the queues its service reads
    jobs = [job.command for job in topology.JOBS]
    declared = {spec.name: spec for spec in topology.SERVICES}
    for unit in units:
        if any(unit.command[:len(job)] == job for job in jobs):
            continue
        spec = declared.get(unit.command[0] if unit.command else "")
        if spec is None:
            found.append(f"{where}: `{prefix}{unit.name}` runs `wcml {' '.join(unit.command)}`, "
                         "which is no declared service or job")
            continue
        task = _task(unit.command) if spec.per_task else None
        if spec.per_task and task not in tasks:
            found.append(f"{where}: `{prefix}{unit.name}` runs {spec.name} for task {task!r}, which no route "
                         f"names (routed: {', '.join(tasks)})")
            continue
        instance = f"{spec.name}-{task}" if spec.per_task else spec.name
        if unit.name != instance:
            found.append(f"{where}: `{prefix}{unit.name}` runs `{instance}`: name it `{prefix}{instance}`")
        running.add(instance)
        reads[unit.name] = {q.name for q in topology.consumed(spec, task)}
        if spec.beside and f"--no-{spec.beside}" not in unit.command:
            running.add(spec.beside)
    for spec in topology.SERVICES:
        for instance, task in topology.instances(spec, tasks):
            if instance not in running:
                command = f"wcml {spec.name}" + (f" --task {task}" if task else "")
                found.append(f"{where}: the declared service `{instance}` runs nowhere "
                             f"(no `{prefix}{instance}` running `{command}`)")
    queues = {q.name for q in topology.QUEUES} | {topology.task_queue(t).name for t in tasks}
    queues |= {q.name for spec in topology.SERVICES for q in topology.own_queues(spec)}
    for target, triggers in scaled.items():
        for scaler, queue in triggers:
            if queue not in queues:
                found.append(f"{where}: `{scaler}` scales on queue `{queue}`, which is not declared")
            elif queue not in reads.get(target, set()):
                found.append(f"{where}: `{scaler}` scales `{prefix}{target}` on `{queue}`, "
                             "which it does not read")
    return found


def _task(command: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(command):
        if arg == "--task" and i + 1 < len(command):
            return command[i + 1]
        if arg.startswith("--task="):
            return arg.split("=", 1)[1]
    return None


def metrics_port_differences(compose: dict, manifests: Sequence[dict]) -> list[str]:
    """compose.yaml (parsed) and the manifests (rendered): each unit offers every metrics port of the
    processes it runs."""
    found = []
    for name, service in (compose.get("services") or {}).items():
        offered = {int(str(p).split(":")[-1].split("/")[0]) for p in
                   [*(service.get("ports") or []), *(service.get("expose") or [])]}
        for process, port, _ in metrics_ports(tuple(map(str, service.get("command") or ()))):
            if port not in offered:
                found.append(f"compose.yaml: `{name}` runs {process}, whose /metrics is on {port}: expose it")
    for doc in manifests:
        if doc.get("kind") not in WORKLOADS or doc["kind"] == "CronJob":
            continue
        template = doc["spec"]["template"]
        name = doc["metadata"]["name"]
        for container in template["spec"]["containers"]:
            command = [*container.get("command", []), *container.get("args", [])]
            if command[:1] != ["wcml"]:
                continue
            declared = {(p.get("name"), p["containerPort"]) for p in container.get("ports", [])}
            wanted = metrics_ports(tuple(command[1:]))
            for process, port, port_name in wanted:
                if (port_name, port) not in declared:
                    found.append(f"deploy: `{name}` runs {process}: declare its port {port} named "
                                 f"`{port_name}`")
            annotations = template["metadata"].get("annotations", {})
            if wanted and annotations.get("prometheus.io/scrape") != "true":
                found.append(f'deploy: `{name}`: annotate its pods prometheus.io/scrape: "true"')
    return found


def metrics_ports(command: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(process, port, Kubernetes port name) of each process ``wcml COMMAND`` runs that serves /metrics."""
    declared = {spec.name: spec for spec in topology.SERVICES}
    spec = declared.get(command[0] if command else "")
    if spec is None:
        return []
    ports = []
    if spec.http and "--metrics-bind" in command:  # its keyless listener; on `http`, with a key only
        bind = command[command.index("--metrics-bind") + 1]
        ports.append((spec.name, int(bind.rpartition(":")[2]), "metrics"))
    elif spec.http or spec.metrics:
        ports.append((spec.name, spec.http or spec.metrics, "http" if spec.http else "metrics"))
    if spec.beside and f"--no-{spec.beside}" not in command:
        beside = declared[spec.beside]
        if beside.metrics:
            ports.append((beside.name, beside.metrics, f"metrics-{beside.name.split('-')[-1]}"))
    return ports
