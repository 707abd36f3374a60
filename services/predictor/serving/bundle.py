"""Model bundles: ``<models_dir>/<task>/<version>/`` = a skops model file + ``manifest.json``.

This module is the format's one owner: training writes bundles through ``write_bundle``, the worker
and evaluation read them through ``load_bundle`` and ``Bundle.predict``.

The manifest's sha256 is checked on the bytes read, before anything is deserialised, and skops
loads only types on an explicit allow-list, so a bundle cannot run code on load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
import skops
import skops.io as sio

from services.predictor import calibration
from services.predictor.calibration import Calibration, CalibrationError
from services.predictor.estimators import coefficients_by_column, direct_calls
from services.predictor.hashing import accelerate
from services.predictor.routing import RepoRouter, model_inputs
from services.predictor.tasks import Task, get_task
from shared.errors import UserError
from shared.known import MANIFEST, installed_versions
from shared.messages import IssueSnapshot

log = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
MANIFEST_FILE = MANIFEST  # what makes a version directory an installed bundle (shared.known)
VERSION_FORMAT = "%Y%m%dT%H%M%SZ"  # UTC; sorts lexicographically in time order

# Types skops does not trust by itself that our pipelines contain (sklearn estimators it trusts).
ALLOWED_TYPES = frozenset({
    "numpy.dtype",
    "numpy.float32", "numpy.float64", "numpy.int32", "numpy.int64", "numpy.ndarray",
    "scipy.sparse._csr.csr_matrix", "scipy.sparse._csr.csr_array",
    # our own code, imported from the installed package (the encoder's weights are checked by sha256)
    "services.predictor.routing.RepoRouter", "services.predictor.embedding.SentenceEmbedding",
    "services.predictor.tasks.base.FirstLine", "services.predictor.tasks.markers.Markers",
    "services.predictor.tuned.TunedEncoder", "services.predictor.tuned.WithEmbeddings",
    "services.predictor.tuned.PairText", "services.predictor.tuned.PairVector",
    "numpy.float16",
})

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BundleError(UserError):
    """A bundle that is missing, malformed, tampered with or unsafe to load."""


@dataclass(frozen=True)
class Scored:
    label: str
    confidence: float  # the model's own probability of ``label``
    probabilities: dict[str, float]
    probability: float | None = None  # calibrated (None: the bundle measured no calibration)
    precision: float | None = None  # measured precision of predictions at least this confident


@dataclass(frozen=True, eq=False)
class Bundle:
    """A loaded, verified model for one task, ready to score batches of issues."""

    task: Task
    version: str
    manifest: dict[str, Any]
    path: Path
    pipeline: Any = field(repr=False)
    calibrations: dict[str, Calibration] = field(default_factory=dict, repr=False)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.pipeline.classes_)

    def predict(self, issues: Sequence[IssueSnapshot]) -> list[Scored]:
        """Score a whole batch with one predict_proba call (batching is where the throughput is)."""
        if not issues:
            return []
        # A loaded bundle's parameters were validated when it was trained, and its features (hashed
        # counts, embeddings) are finite: the per-call checks were a tenth of a single issue's time.
        with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
            proba = self.pipeline.predict_proba(model_inputs(self.task, self.pipeline, issues))
        labels = self.labels
        best = proba.argmax(axis=1)
        calibrated, precision = self._calibrated(issues, proba)
        return [Scored(labels[b], float(row[b]), dict(zip(labels, map(float, row), strict=True)),
                       None if c is None else float(c[b]), p)
                for row, b, c, p in zip(proba, best, calibrated, precision, strict=True)]

    def _calibrated(self, issues: Sequence[IssueSnapshot], proba: np.ndarray
                    ) -> tuple[list[np.ndarray | None], list[float | None]]:
        """Each row's calibrated probabilities and measured precision, by the calibration of its scope:
        ``unseen`` where a router's fallback answered, ``trained`` otherwise; None where the bundle
        has no calibration for that scope."""
        scopes = np.full(len(issues), calibration.TRAINED, dtype=object)
        if isinstance(self.pipeline, RepoRouter):
            scopes[~self.pipeline.routed([i.repo for i in issues])] = calibration.UNSEEN
        labels = self.labels
        rows: list[np.ndarray | None] = [None] * len(issues)
        precision: list[float | None] = [None] * len(issues)
        for scope, cal in self.calibrations.items():
            mask = np.flatnonzero(scopes == scope)
            if not len(mask):
                continue
            calibrated = cal.apply(proba[mask])
            for i, row in zip(mask, calibrated, strict=True):
                rows[i] = row
                precision[i] = cal.precision_at(labels[int(row.argmax())], float(row.max()))
        return rows, precision


def new_version(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(VERSION_FORMAT)


def _check_name(kind: str, name: str) -> None:
    if not _SAFE_NAME.match(name or ""):
        raise BundleError(f"invalid {kind} name {name!r} (letters, digits, '.', '_', '-' only)")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _trusted_types(data: bytes, where: str) -> list[str]:
    """The non-default types in a skops file, refusing any that is not on our allow-list."""
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise BundleError(f"{where}: {MODEL_FILE} is not a readable skops file ({exc})") from None
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        raise BundleError(f"{where}: {MODEL_FILE} contains types outside the allow-list: "
                          f"{', '.join(refused)}")
    return list(untrusted)


def _libraries() -> dict[str, str]:
    return {"python": platform.python_version(), "sklearn": sklearn.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "skops": skops.__version__}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_bundle(models_dir: Path, task: Task, pipeline: Any, *, data_fingerprint: str, data_size: int,
                 metrics: dict[str, Any], version: str | None = None,
                 thresholds: dict[str, float] | None = None, data_source: str | None = None) -> Path:
    """Write a bundle into a hidden temp dir, then rename it in place: readers never see half of one.
    The calibration training measured (``metrics["calibration"]``) goes to the manifest's top level,
    where ``load_bundle`` reads it."""
    version = version or new_version()
    _check_name("task", task.name)
    _check_name("version", version)
    where = f"bundle {task.name}/{version}"
    labels = [str(c) for c in getattr(pipeline, "classes_", [])]
    if not labels or set(labels) - set(task.labels):
        raise BundleError(f"{where}: the model's classes {labels} are not labels of task {task.name}")
    metrics = dict(metrics)
    calibrations = metrics.pop("calibration", None) or {}
    try:
        calibration.read({"calibration": calibrations})  # refuse now what load_bundle would refuse
    except CalibrationError as exc:
        raise BundleError(f"{where}: {exc}") from None
    task_dir = Path(models_dir) / task.name
    final = task_dir / version
    if final.exists():
        raise BundleError(f"{where}: already exists at {final}")
    task_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=task_dir))
    try:
        model = sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)  # hashed features: mostly zeros
        _trusted_types(model, where)  # refuse now what load_bundle would refuse later
        _write_synced(tmp / MODEL_FILE, model)
        manifest = {
            "task": task.name, "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_file": MODEL_FILE, "sha256": _sha256(model), "labels": labels,
            "thresholds": dict(thresholds or {}),
            "data": {"fingerprint": data_fingerprint, "size": int(data_size),
                     **({"source": data_source} if data_source else {})},
            "metrics": metrics, "libraries": _libraries(),
            "calibration": calibrations,
        }
        text = json.dumps(manifest, indent=2, sort_keys=True, default=_json_default) + "\n"
        _write_synced(tmp / MANIFEST_FILE, text.encode())
        os.rename(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BundleError(f"{where}: could not install at {final} ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def list_versions(models_dir: Path, task_name: str) -> list[str]:
    """Installed versions of a task, oldest first; temp dirs and dirs without a manifest are ignored
    (``shared.known.installed_versions``, which the API reads too)."""
    _check_name("task", task_name)
    return installed_versions(models_dir, task_name)


def _read_manifest(path: Path, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise BundleError(f"{where}: no {MANIFEST_FILE} in {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{where}: unreadable {MANIFEST_FILE} ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: {MANIFEST_FILE} is not a JSON object")
    missing = [k for k in ("task", "version", "model_file", "sha256", "labels") if k not in manifest]
    if missing:
        raise BundleError(f"{where}: {MANIFEST_FILE} lacks {', '.join(missing)}")
    return manifest


def load_bundle(models_dir: Path, task_name: str, version: str | None = None) -> Bundle:
    """Load a verified bundle; ``version=None`` picks the newest installed one."""
    task = get_task(task_name)
    if version is None:
        versions = list_versions(models_dir, task_name)
        if not versions:
            raise BundleError(f"no model installed for {task_name}: "
                              f"no bundle in {Path(models_dir) / task_name}")
        version = versions[-1]
    _check_name("version", version)
    where = f"bundle {task_name}/{version}"
    path = Path(models_dir) / task_name / version
    if not path.is_dir():
        raise BundleError(f"{where}: not installed (no directory {path})")
    manifest = _read_manifest(path, where)
    if (manifest["task"], manifest["version"]) != (task_name, version):
        raise BundleError(f"{where}: manifest says {manifest['task']}/{manifest['version']}")
    model_file = str(manifest["model_file"])
    _check_name("model file", model_file)
    try:
        data = (path / model_file).read_bytes()
    except OSError as exc:
        raise BundleError(f"{where}: cannot read {model_file} ({exc.strerror or exc})") from None
    digest = _sha256(data)
    if digest != manifest["sha256"]:
        raise BundleError(f"{where}: {model_file} sha256 mismatch "
                          f"(manifest {str(manifest['sha256'])[:12]}…, file {digest[:12]}…)")
    trusted = _trusted_types(data, where)
    try:
        pipeline = sio.loads(data, trusted=trusted)
    except Exception as exc:
        raise BundleError(f"{where}: {model_file} failed to load ({exc.__class__.__name__}: {exc})") from None
    accelerate(pipeline)  # the same matrix, hashed in numpy (services/predictor/hashing.py)
    coefficients_by_column(pipeline)  # the same scores, without a copy of the weights per call
    direct_calls(pipeline)  # the same scores, without scikit-learn's per-call machinery around the steps
    classes = [str(c) for c in getattr(pipeline, "classes_", [])]
    if not hasattr(pipeline, "predict_proba") or classes != list(manifest["labels"]):
        raise BundleError(f"{where}: model classes {classes} do not match "
                          f"manifest labels {manifest['labels']}")
    built_with = (manifest.get("libraries") or {}).get("sklearn")
    if built_with and built_with != sklearn.__version__:
        log.warning("%s: built with scikit-learn %s, running %s", where, built_with, sklearn.__version__)
    try:
        calibrations = calibration.read(manifest)
    except CalibrationError as exc:
        raise BundleError(f"{where}: {MANIFEST_FILE}: {exc}") from None
    return Bundle(task=task, version=version, manifest=manifest, path=path, pipeline=pipeline,
                  calibrations=calibrations)
