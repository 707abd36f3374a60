"""The task registry: adding a task is one module and one line in ``TASKS``."""

from __future__ import annotations

from services.predictor.tasks import issuetype, needsdiagnosis
from services.predictor.tasks.base import Task
from shared.errors import UserError

TASKS: dict[str, Task] = {
    needsdiagnosis.TASK.name: needsdiagnosis.TASK,
    issuetype.TASK.name: issuetype.TASK,
}


class UnknownTaskError(UserError, ValueError):
    """A task name that no module defines (a typo in ``--task`` or a routing rule)."""


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r} (known: {', '.join(sorted(TASKS))})") from None


__all__ = ["TASKS", "Task", "UnknownTaskError", "get_task"]
