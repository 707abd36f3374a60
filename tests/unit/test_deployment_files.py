"""No Docker engine runs here: check that compose.yaml and the Dockerfiles describe a deployable system."""

import re
from pathlib import Path

import yaml

from services.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
REQUIRED = {
    "ingest": {"WCML_BROKER_URL", "WCML_DATABASE_URL", "WCML_WEBHOOK_SECRETS"},
    "dispatcher": {"WCML_BROKER_URL", "WCML_DATABASE_URL"},
    "predictor": {"WCML_BROKER_URL", "WCML_MODELS_DIR"},
    "store": {"WCML_BROKER_URL", "WCML_DATABASE_URL", "WCML_BLOB_URL", "AWS_ENDPOINT_URL"},
    "api": {"WCML_BROKER_URL", "WCML_DATABASE_URL", "WCML_API_KEYS"},
}




def wcml_services():
    return {name: s for name, s in COMPOSE["services"].items()
            if str(s.get("image")).startswith("wcml-service:")
            or "docker/service.Dockerfile" in str(s.get("build"))}


def test_every_command_is_a_real_wcml_subcommand_with_its_variables():
    parser = build_parser()
    services = wcml_services()
    expected = {"ingest", "dispatcher", "predictor-needsdiagnosis", "predictor-issuetype", "store", "api"}
    assert expected <= set(services)
    for name, service in services.items():
        command = service["command"]
        args = parser.parse_args(command)  # exits (fails the test) on an unknown command or flag
        assert callable(args.func), name
        env = set(service.get("environment") or {})
        assert env >= REQUIRED.get(command[0], set()), (name, REQUIRED[command[0]] - env)


def test_infrastructure_has_health_checks_and_services_wait_for_it():
    services = COMPOSE["services"]
    for name in ("rabbitmq", "postgres", "s3"):
        assert "healthcheck" in services[name], name
    assert "management" in services["rabbitmq"]["image"]
    for name, service in wcml_services().items():
        if name in ("migrate", "models"):
            continue
        assert "healthcheck" in service, name
        conditions = {dep: c["condition"] for dep, c in service["depends_on"].items()}
        assert conditions.get("rabbitmq") == "service_healthy", name
        if service["command"][0] == "store":  # the bucket exists before the store writes to it
            assert conditions.get("s3") == "service_healthy", name
    bucket = COMPOSE["x-wcml-env"]["WCML_BLOB_URL"].removeprefix("s3://").split("/")[0]
    assert f"-bucket={bucket}" in services["s3"]["command"]  # created by the S3 server at its start
    assert f"/buckets/{bucket}/" in " ".join(services["s3"]["healthcheck"]["test"])  # healthy once it exists
    assert services["rabbitmq"]["image"].startswith("rabbitmq:4.")
    assert services["predictor-needsdiagnosis"]["deploy"]["replicas"] >= 1


def test_dockerfiles_are_slim_non_root_and_healthchecked():
    for path in (ROOT / "docker").glob("*.Dockerfile"):
        text = path.read_text()
        assert re.search(r"^FROM python:3\.\d+-slim", text, re.M), path.name
        assert re.search(r"^USER (?!root)\S+", text, re.M), path.name
        assert "HEALTHCHECK" in text, path.name
    predictor = (ROOT / "docker" / "predictor.Dockerfile").read_text()
    assert "ARG TASK" in predictor and "ARG MODEL_PATH" in predictor and "COPY ${MODEL_PATH}" in predictor
