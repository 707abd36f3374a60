"""The offline tools the deployment tests use (scripts/deploy-tools installs them under .cache/):
kubectl, whose built-in kustomize renders deploy/overlays/*, checkov in a venv of its own, and promtool
(Debian's prometheus package) for deploy/observability's rules and configurations."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
KUBECTL = Path(os.environ.get("WCML_KUBECTL", ROOT / ".cache/kubectl/kubectl"))
CHECKOV = Path(os.environ.get("WCML_CHECKOV", ROOT / ".cache/checkov-venv/bin/checkov"))
PROMTOOL = Path(os.environ.get("WCML_PROMTOOL", ROOT / ".cache/promtool/promtool"))
# Any attempt of a tool to reach the network goes to a closed port on this machine and fails there.
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}


def overlays() -> list[Path]:
    return sorted(p for p in (DEPLOY / "overlays").iterdir() if (p / "kustomization.yaml").is_file())


def _tool(path: Path) -> str:
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run scripts/deploy-tools (scripts/test does) to install it")
    return str(path)


def render(overlay: Path) -> str:
    """`kubectl kustomize OVERLAY`: the manifests as they would be applied."""
    done = subprocess.run([_tool(KUBECTL), "kustomize", str(overlay)], capture_output=True, text=True,
                          env={**os.environ, **OFFLINE}, timeout=120)
    assert done.returncode == 0, f"{overlay.name} does not render: {done.stderr}"
    return done.stdout


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def checkov(directory: Path) -> dict:
    """checkov's Kubernetes checks over every YAML file in ``directory``, as its JSON report."""
    done = subprocess.run(
        [_tool(CHECKOV), "--directory", str(directory), "--framework", "kubernetes", "--output", "json",
         "--skip-download", "--soft-fail"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, **OFFLINE, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"})
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``promtool ARGS`` (``check rules``, ``test rules``, ``check config``), its output as text."""
    return subprocess.run([_tool(PROMTOOL), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **OFFLINE}, timeout=120)
