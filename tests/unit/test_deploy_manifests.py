"""No cluster runs here: the Kubernetes manifests (deploy/) are checked offline. Every overlay renders
(kubectl's kustomize), every document validates against Kubernetes' own schemas with no unknown field
(kubernetes-validate) or KEDA's (cloudcoil's models of its CRDs), checkov finds nothing unexplained, and
each workload keeps what docs/deploy.md promises: non-root, read-only root, probes on `wcml
healthcheck`, resources from the measured RSS, credentials only by reference to a Secret."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from cloudcoil.models.keda.v1alpha1 import ScaledObject, TriggerAuthentication
from kubernetes_validate import utils as kubernetes_validate

from services.cli import build_parser
from tests.deploy_tools import DEPLOY, ROOT, checkov, documents, overlays, render

# The newest minor version kubernetes-validate ships schemas for, and the oldest one upstream still
# maintained when this was written (upstream keeps the three newest).
KUBERNETES_VERSIONS = ("1.35", "1.37")
KEDA = {"ScaledObject": ScaledObject, "TriggerAuthentication": TriggerAuthentication}
SERVICES = {"wcml-ingest", "wcml-dispatcher", "wcml-predictor-needsdiagnosis", "wcml-predictor-issuetype",
            "wcml-store", "wcml-api", "wcml-actions", "wcml-follow"}
DEPLOY_DOC = (ROOT / "docs" / "deploy.md").read_text()
CREDENTIAL = re.compile(r"PASSWORD|SECRET|TOKEN|_KEYS?(_ID)?$")
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


@cache
def rendered(name: str) -> tuple[dict, ...]:
    return tuple(documents(render(DEPLOY / "overlays" / name)))


OVERLAYS = [p.name for p in overlays()]


def of_kind(docs, *kinds):
    return [d for d in docs if d["kind"] in kinds]


def pod_specs(docs):
    for doc in of_kind(docs, "Deployment", "Job"):
        yield doc, doc["spec"]["template"]["spec"]


def containers(docs):
    for doc, spec in pod_specs(docs):
        for container in spec["containers"]:
            yield doc, container


def validate(doc: dict, version: str) -> None:
    """Raise unless ``doc`` is valid for that Kubernetes version (KEDA's kinds: for KEDA's CRDs)."""
    if doc["kind"] in KEDA:  # a field the model does not know is dropped: compare the round trip
        model = KEDA[doc["kind"]].model_validate(doc)
        assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == doc, doc["metadata"]
        return
    kubernetes_validate.validate(doc, version, strict=True)


def test_there_are_overlays_and_each_renders_every_service():
    assert {"production", "staging"} <= set(OVERLAYS)
    for name in OVERLAYS:
        docs = rendered(name)
        assert {d["metadata"]["name"] for d in of_kind(docs, "Deployment")} == SERVICES, name
        assert [d["metadata"]["name"] for d in of_kind(docs, "Job")] == ["wcml-migrate"], name
        namespace = of_kind(docs, "Namespace")[0]["metadata"]["name"]
        for doc in docs:
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == namespace, (name, doc["metadata"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_document_validates_against_the_schemas(overlay, version):
    docs = rendered(overlay)
    for doc in docs:
        validate(doc, version)
    print(f"{overlay}: {len(docs)} documents valid for Kubernetes {version}")


def test_the_validation_rejects_what_a_cluster_would_reject():
    docs = rendered(OVERLAYS[0])
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    wrong_type = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    keda_typo = {**scaled, "spec": {**scaled["spec"], "minReplicas": 1}}
    keda_type = {**scaled, "spec": {**scaled["spec"], "maxReplicaCount": "many"}}
    for broken in (typo, wrong_type, keda_typo, keda_type):
        with pytest.raises(Exception):  # noqa: B017 - each validator raises its own kind
            validate(broken, KUBERNETES_VERSIONS[-1])


def test_checkov_finds_nothing_unexplained(tmp_path):
    for name in OVERLAYS:
        (tmp_path / f"{name}.yaml").write_text(render(DEPLOY / "overlays" / name))
    report = checkov(tmp_path)
    results, summary = report["results"], report["summary"]
    failed = [(c["check_id"], c["resource"], c.get("severity")) for c in results["failed_checks"]]
    assert not failed, f"checkov: fix these or explain them in the manifest (checkov.io/skipN): {failed}"
    assert summary["parsing_errors"] == 0 and summary["passed"] > 100, summary
    for check in results["skipped_checks"]:  # every skip carries its reason, in the manifest
        assert len(check["check_result"].get("suppress_comment", "").strip()) > 40, check["check_id"]
    print(f"checkov: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped "
          f"({sorted({c['check_id'] for c in results['skipped_checks']})})")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_non_root_read_only_probed_and_bounded(overlay):
    docs = rendered(overlay)
    for doc, spec in pod_specs(docs):
        name = doc["metadata"]["name"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        tmp = {m["name"] for c in spec["containers"] for m in c["volumeMounts"] if m["mountPath"] == "/tmp"}
        assert all("emptyDir" in v for v in spec["volumes"] if v["name"] in tmp) and tmp, name
    for doc, container in containers(docs):
        name = doc["metadata"]["name"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        assert {"cpu", "memory"} <= set(requests) and {"cpu", "memory"} <= set(limits), name
        assert mebibytes(requests["memory"]) < mebibytes(limits["memory"]), name
        image, _, tag = container["image"].rpartition(":")
        assert image and tag.startswith(VERSION) and "latest" not in tag, container["image"]
        if doc["kind"] == "Deployment":
            for probe in ("readinessProbe", "livenessProbe"):
                assert container[probe]["exec"]["command"][:2] == ["wcml", "healthcheck"], (name, probe)


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


def measured_peak_rss() -> dict[str, float]:
    """docs/benchmarks.md's "peak RSS per service" rows: the largest figure per service."""
    peaks: dict[str, float] = {}
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    for row in re.findall(r"^\| peak RSS per service[^|]*\| ([^|]+)\|", text, re.M):
        for service, mib in re.findall(r"([\w-]+) (\d+) MiB", row):
            peaks[f"wcml-{service}"] = max(peaks.get(f"wcml-{service}", 0), float(mib))
    return peaks


def test_memory_requests_cover_the_measured_peak_rss():
    peaks = measured_peak_rss()
    assert {"wcml-ingest", "wcml-store", "wcml-predictor-issuetype"} <= set(peaks)
    for doc, container in containers(rendered("production")):
        name, resources = doc["metadata"]["name"], container["resources"]
        if name in peaks:  # the request holds the peak; the limit leaves half as much again for bursts
            assert mebibytes(resources["requests"]["memory"]) >= peaks[name], name
            assert mebibytes(resources["limits"]["memory"]) >= 1.5 * peaks[name], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_credentials_only_by_reference_to_documented_secrets(overlay):
    docs = rendered(overlay)
    assert not of_kind(docs, "Secret"), "a Secret's values would be in the manifests"
    for doc, container in containers(docs):
        name, defined = doc["metadata"]["name"], set()
        for env in container.get("env", []):
            value = env.get("value", "")
            assert not ("value" in env and CREDENTIAL.search(env["name"])), (name, env["name"])
            for userinfo in re.findall(r"://([^/@]*)@", value):  # user:password in a URL: references only
                assert re.fullmatch(r"\$\([A-Z_]+\):\$\([A-Z_]+\)", userinfo), (name, env["name"])
            for used in re.findall(r"\$\(([A-Z_]+)\)", value):
                assert used in defined, f"{name}: {env['name']} uses $({used}) before it is defined"
            defined.add(env["name"])
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:  # docs/deploy.md lists every Secret with its keys
                assert f"`{ref['name']}`" in DEPLOY_DOC and f"`{ref['key']}`" in DEPLOY_DOC, ref
    for auth in of_kind(docs, "TriggerAuthentication"):
        for ref in auth["spec"]["secretTargetRef"]:
            assert f"`{ref['name']}`" in DEPLOY_DOC, ref


def test_commands_are_real_wcml_subcommands_given_what_they_need():
    parser = build_parser()
    for doc, container in containers(rendered("production")):
        name, command = doc["metadata"]["name"], container["command"]
        env = {e["name"] for e in container.get("env", [])}
        assert command[0] == "wcml", name
        args = parser.parse_args(command[1:])  # exits (fails the test) on an unknown command or flag
        if args.command == "actions":
            assert {"GITHUB_TOKEN", "WCML_ACTIONS_POLICY", "WCML_ACTIONS_LIVE"} <= env, name
        needs = set(args.needs) | set(args.requires)
        assert needs <= env, (name, needs - env)
        if args.command == "predictor":
            assert "WCML_MODELS_DIR" in env, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_and_queue_scaling_cover_every_service(overlay):
    docs = rendered(overlay)
    namespace = of_kind(docs, "Namespace")[0]["metadata"]["name"]
    budgets = [b["spec"]["selector"]["matchLabels"] for b in of_kind(docs, "PodDisruptionBudget")]
    auths = {a["metadata"]["name"] for a in of_kind(docs, "TriggerAuthentication")}
    scalers = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(docs, "ScaledObject")}
    for deployment in of_kind(docs, "Deployment"):
        name, labels = deployment["metadata"]["name"], deployment["spec"]["template"]["metadata"]["labels"]
        assert any(selector.items() <= labels.items() for selector in budgets), f"{name} has no budget"
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        if command[1] != "predictor":
            continue
        trigger = scalers[name]["spec"]["triggers"][0]
        assert "replicas" not in deployment["spec"], f"{name}: KEDA owns the replica count"
        assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["metadata"]["queueName"] == f"tasks.{command[command.index('--task') + 1]}"
        assert f".{namespace}.svc:" in trigger["metadata"]["host"], "KEDA must reach this namespace's broker"
        assert trigger["authenticationRef"]["name"] in auths


def test_healthcheck_needs_only_the_broker_as_a_predictor_has(monkeypatch, tmp_path, capsys):
    """A predictor's pod has no database URL: its probe must still reach the broker check."""
    from services.cli import main

    for name in ("WCML_DATABASE_URL", "WCML_BLOB_URL", "WCML_WEBHOOK_SECRETS", "WCML_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WCML_BROKER_URL", "amqp://u:p@127.0.0.1:1/%2F")  # nothing listens on port 1
    monkeypatch.chdir(tmp_path)
    assert main(["healthcheck"]) == 2
    assert "unhealthy: " in capsys.readouterr().err


def test_sources_hold_no_credential():
    """Belt and braces over the rendered checks: the files under deploy/ name no password at all."""
    for path in Path(DEPLOY).rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"(?i)^\s*(stringData|data):", text, re.M), path
            assert not re.search(r"(?i)(password|secret|token)\s*[:=]\s*['\"]?\w{6,}", text), path


def test_the_deployed_actions_policy_is_the_packaged_one():
    """kustomize reads files only under its root, so the policy is copied there: the same file."""
    from services.actions.policy import DEFAULT_POLICY, load_policy

    deployed = ROOT / "deploy" / "base" / "actions-policy.toml"
    assert deployed.read_text() == DEFAULT_POLICY.read_text()
    assert load_policy(deployed).rules
