"""What a request may name: a replay's or a comparison's tasks and model versions.

A request naming anything else is refused before it starts anything, with one line that lists what
is known (``UnknownName``, at most ``MAX_LISTED`` names). Known means:

- a **task** of a replay: one the routing rules route to (``WCML_ROUTES``, else the packaged
  ``shared/routes.toml``), the tasks a replay can publish for;
- a **model version** of a replay, for each task it replays (those named, else every routed one):
  a bundle installed for that task under ``WCML_MODELS_DIR`` (``<dir>/<task>/<version>/manifest.json``),
  where that directory holds any bundle of the task. Where it holds none, the process cannot see
  the bundles (in Kubernetes they are in the predictor's image, not the API's): known are then the
  versions that have stored predictions of the task, what a predictor has loaded before;
- a **task and model versions of a comparison**: those with predictions in the store, what a
  comparison reads (``services/api/comparison.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.errors import UserError
from shared.event_routes import load_rules, tasks_of

MANIFEST = "manifest.json"
MAX_LISTED = 12
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # as a bundle's version is named


class UnknownName(UserError, ValueError):
    """A request names a task or model version that is not known; the message lists the known ones."""


def listed(names: Iterable[str]) -> str:
    """``a, b, c`` (at most ``MAX_LISTED`` names of at most 64 characters, then how many more)."""
    names = sorted(set(names))
    shown = ", ".join(n[:64] for n in names[:MAX_LISTED]) or "none"
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def unknown(kind: str, name: str, known: Iterable[str], *, of: str = "", where: str = "") -> UnknownName:
    """The refusal of ``name``: ``unknown <kind> '<name>'<of>; known<where>: <names>``."""
    return UnknownName(f"unknown {kind} {name[:64]!r}{of}; known{where}: {listed(known)}")


def check(kind: str, name: str, known: Sequence[str], *, of: str = "", where: str = "") -> None:
    """``UnknownName`` unless ``name`` is one of ``known``; ``where`` says where they were read."""
    if name not in known:
        raise unknown(kind, name, known, of=of, where=where)


def installed_versions(models_dir: Path, task: str) -> list[str]:
    """Versions of ``task`` installed under ``models_dir``, oldest first: the version directories that
    hold a manifest (a bundle is renamed into place whole, so one being written is not listed)."""
    task_dir = Path(models_dir) / task
    try:
        return sorted(p.name for p in task_dir.iterdir()
                      if _VERSION.match(p.name) and (p / MANIFEST).is_file())
    except OSError:  # no such directory, or none this process may read
        return []


StoredVersions = Callable[[str], Sequence[str]]  # a task's model versions that have stored predictions


@dataclass(frozen=True)
class Known:
    """The routed tasks and the bundles directory, as this process reads them at start."""

    tasks: tuple[str, ...]
    models_dir: Path | None = None  # None: no bundle is readable here

    @classmethod
    def read(cls, routes_file: Path | None, models_dir: Path | None) -> Known:
        return cls(tuple(tasks_of(load_rules(routes_file))), models_dir)

    def model_versions(self, task: str, stored: StoredVersions) -> tuple[list[str], str]:
        """The versions a replay may force for ``task``, and where they were read (for the error line)."""
        installed = installed_versions(self.models_dir, task) if self.models_dir else []
        if installed:
            return installed, f" (installed in {self.models_dir}/{task})"
        return sorted(stored(task)), f" (with predictions; no bundle of {task[:64]} readable here)"

    def check_replay(self, tasks: Sequence[str], model_version: str | None, stored: StoredVersions) -> None:
        """A replay of ``tasks`` (none: every routed task) with ``model_version`` (None: each task's
        default), or ``UnknownName`` for the first unknown name."""
        for task in tasks:
            check("task", task, self.tasks)
        if model_version:
            for task in tasks or self.tasks:
                versions, where = self.model_versions(task, stored)
                check("model version", model_version, versions, of=f" for task {task}", where=where)
