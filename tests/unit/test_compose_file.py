"""compose.yaml holds no credential and no floating image (no Docker engine runs here, so the file is
read as YAML, as `docker compose config` would before interpolation): every image is pinned to a
version, every password, secret, key and token comes from `.env` by `${VAR}` interpolation, and
`.env.example` (which the README copies) names every variable with no secret value in it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "compose.yaml").read_text()
COMPOSE = yaml.safe_load(TEXT)
SERVICES = COMPOSE["services"]
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")
CREDENTIAL_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|_USER$")
# a specific release: major.minor.patch (4.2.9-management), MinIO's RELEASE.<time>, and for PostgreSQL
# and SeaweedFS, whose releases are two numbers (16.6-alpine, 4.44), major.minor
PINNED = re.compile(r"^(\d+\.\d+\.\d+([.-][\w.-]+)?|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)$")
PINNED_TWO_NUMBERS = re.compile(r"^\d+\.\d+([.-][\w.-]+)?$")
TWO_NUMBER_RELEASES = ("postgres", "chrislusf/seaweedfs")


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def strings(node):
    """Every string in a YAML tree (values of environment, command, entrypoint, healthcheck…)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def test_every_image_is_pinned_to_a_version():
    for name, service in SERVICES.items():
        image = service.get("image")
        assert image, f"{name} has no image name (it would be tagged by compose, not by us)"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and "latest" not in image, f"{name}: {image}"
        if "build" in service or repository.startswith("wcml-"):
            assert tag == VERSION, f"{name}: our image carries the project's version ({VERSION})"
        else:
            pinned = PINNED_TWO_NUMBERS if repository.endswith(TWO_NUMBER_RELEASES) else PINNED
            assert pinned.match(tag), f"{name}: {image} is not a specific release"


def test_no_credential_is_written_in_the_file():
    for name, service in SERVICES.items():
        for variable, value in (service.get("environment") or {}).items():
            if CREDENTIAL_NAME.search(variable):
                assert INTERPOLATION.fullmatch(str(value)), f"{name}: {variable} must come from .env"
        for text in strings(service):
            for userinfo in re.findall(r"://([^/@\s]*)@", text):  # user:password inside a URL
                assert re.fullmatch(r"(\$\{[^}]+\}):(\$\{[^}]+\})", userinfo), f"{name}: {text}"
    # nor anywhere else in the text, e.g. a literal after an `mc alias set`
    assert not re.search(r"(?i)(password|pass|secret)\s*[:=]\s*[\w-]{3,}\s*$", TEXT, re.M)
    assert "wcml-secret" not in TEXT and "guest:guest" not in TEXT


def test_env_example_names_every_variable_and_holds_no_secret():
    example = env_example()
    used = set(INTERPOLATION.findall(TEXT))
    assert used <= set(example), f"missing from .env.example: {used - set(example)}"
    for variable, value in example.items():
        if re.search(r"PASSWORD|SECRETS|SECRET_KEY|KEYS|TOKEN", variable):
            assert value == "", f".env.example must leave {variable} empty"
    required = {m.group(1) for m in re.finditer(r"\$\{(\w+):\?", TEXT)}
    assert {"RABBITMQ_PASSWORD", "POSTGRES_PASSWORD", "S3_SECRET_KEY",
            "WCML_WEBHOOK_SECRETS", "WCML_API_KEYS"} <= required  # compose stops when one is unset
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_readme_shows_the_env_file_and_the_start():
    readme = (ROOT / "README.md").read_text()
    assert "cp .env.example .env" in readme and "docker compose up -d --build" in readme
    assert "docs/deploy.md" in readme


def test_actions_is_an_opt_in_dry_run():
    actions = SERVICES["actions"]
    assert actions["profiles"] == ["actions"]  # `docker compose up` leaves it out
    assert actions["command"] == ["actions"]
    env = actions["environment"]
    assert env["WCML_ACTIONS_LIVE"] == "${WCML_ACTIONS_LIVE:-0}" and env_example()["WCML_ACTIONS_LIVE"] == "0"
    assert INTERPOLATION.fullmatch(env["GITHUB_TOKEN"]) and env["WCML_ACTIONS_POLICY"].startswith("/")
    mounted = {v.split(":")[1]: v.split(":")[0] for v in actions["volumes"]}
    assert (ROOT / mounted[env["WCML_ACTIONS_POLICY"]]).is_file()


def test_dockerignore_keeps_the_context_small_but_the_model_in():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".cache", ".env", "**/__pycache__", "**/*.pyc", "node_modules",
                  "tests", "bench", "var/*"):
        assert entry in ignored, entry
    assert "!var/models" in ignored  # docker/predictor.Dockerfile copies MODEL_PATH from var/models/…
    for needed in ("pyproject.toml", "README.md", "requirements", "shared", "services"):
        assert needed not in ignored, needed
    predictor = (ROOT / "docker" / "predictor.Dockerfile").read_text()
    assert "ARG MODEL_PATH" in predictor and "COPY ${MODEL_PATH}" in predictor
