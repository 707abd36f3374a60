"""Routing: which ML tasks a GitHub event starts, and the task messages it becomes.

The rules are a declarative TOML file (``WCML_ROUTES``; the packaged default is ``routes.toml``
beside this module). Two places route with them: the dispatcher (live and imported events) and the
replay source, which turns the events it reads from the log straight into task messages, one hop
fewer for a replay of history. Both use this module, so a replay routes as the live path does.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from shared.broker.port import Outgoing
from shared.errors import UserError
from shared.issues import NotAnIssueError, snapshot_of_issue
from shared.messages import (
    TASKS_EXCHANGE,
    EventEnvelope,
    IssueSnapshot,
    TaskMessage,
    batch_message_id,
    encode_batch,
)

DEFAULT_ROUTES = Path(__file__).with_name("routes.toml")
# Task messages of one task in one AMQP message: the broker's cost (a publish, a confirm, a delivery
# and an ack) is per batch, not per task (docs/benchmarks.md); small enough that a predictor's
# prefetch of 512 messages holds no more than about 25,000 issues.
TASKS_PER_MESSAGE = 50
_FIELDS = {"task", "event", "actions", "repos", "senders", "exclude_senders", "label"}


class RulesError(UserError, ValueError):
    """The rules file is unreadable or a rule is malformed."""


@dataclass(frozen=True)
class Rule:
    task: str
    event: str
    actions: frozenset[str] | None = None
    repos: frozenset[str] | None = None
    senders: frozenset[str] | None = None
    exclude_senders: frozenset[str] = frozenset()
    label: str | None = None

    def matches(self, e: EventEnvelope) -> bool:
        if e.event != self.event:
            return False
        if self.actions is not None and e.action not in self.actions:
            return False
        if self.repos is not None and e.repo not in self.repos:
            return False
        if self.senders is not None and e.sender not in self.senders:
            return False
        if e.sender in self.exclude_senders:
            return False
        if self.label is not None:
            label = e.payload.get("label")
            if not isinstance(label, dict) or label.get("name") != self.label:
                return False
        return True


def _names(rule: dict, key: str, where: str) -> frozenset[str] | None:
    value = rule.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RulesError(f"{where}: {key} must be a list of strings")
    return frozenset(value)


def parse_rules(text: str, source: str = "rules") -> tuple[Rule, ...]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from None
    rules = doc.get("rule")
    if not isinstance(rules, list) or not rules:
        raise RulesError(f"{source}: no [[rule]] tables")
    out = []
    for i, rule in enumerate(rules, 1):
        where = f"{source}: rule {i}"
        unknown = set(rule) - _FIELDS
        if unknown:
            raise RulesError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        for key in ("task", "event"):
            if not isinstance(rule.get(key), str) or not rule[key]:
                raise RulesError(f"{where}: {key} must be a non-empty string")
        label = rule.get("label")
        if label is not None and not isinstance(label, str):
            raise RulesError(f"{where}: label must be a string")
        out.append(Rule(task=rule["task"], event=rule["event"], actions=_names(rule, "actions", where),
                        repos=_names(rule, "repos", where), senders=_names(rule, "senders", where),
                        exclude_senders=_names(rule, "exclude_senders", where) or frozenset(),
                        label=label))
    return tuple(out)


def load_rules(path: Path | None = None) -> tuple[Rule, ...]:
    path = path or DEFAULT_ROUTES
    try:
        return parse_rules(path.read_text(), str(path))
    except OSError as exc:
        raise RulesError(f"{path}: {exc.strerror}") from None


def tasks_of(rules: tuple[Rule, ...]) -> list[str]:
    return sorted({r.task for r in rules})


def matching_tasks(rules: tuple[Rule, ...], e: EventEnvelope) -> list[str]:
    return sorted({r.task for r in rules if r.matches(e)})


class NotAnIssueEvent(NotAnIssueError):
    """A rule matched an event whose payload carries no usable issue."""


def snapshot(e: EventEnvelope) -> IssueSnapshot:
    """The payload's issue as the predictor reads it, mapped as training maps it (``shared.issues``)."""
    try:
        return snapshot_of_issue(e.payload.get("issue"), e.repo)
    except NotAnIssueError:
        raise NotAnIssueEvent(f"{e.event}.{e.action} delivery {e.delivery_id} has no issue object") from None


def route(rules: tuple[Rule, ...], e: EventEnvelope) -> list[TaskMessage]:
    tasks = [t for t in matching_tasks(rules, e) if not e.only_tasks or t in e.only_tasks]
    if not tasks:
        return []
    issue = snapshot(e)
    return [TaskMessage(task=t, delivery_id=e.delivery_id, position=e.position, event=e.event,
                        action=e.action, issue=issue, replay_id=e.replay_id,
                        model_version=e.model_version, source=e.source)
            for t in tasks]


def task_messages(tasks: list[TaskMessage], per_message: int = TASKS_PER_MESSAGE) -> list[Outgoing]:
    """Task messages to publish: each task's, in order, up to ``per_message`` in one (a batch)."""
    by_task: dict[str, list[TaskMessage]] = {}
    for t in tasks:
        by_task.setdefault(t.task, []).append(t)
    out = []
    for task, messages in sorted(by_task.items()):
        for start in range(0, len(messages), per_message):
            batch = messages[start:start + per_message]
            out.append(Outgoing(TASKS_EXCHANGE, task, encode_batch(batch),
                                message_id=batch_message_id(batch[0].task_id, len(batch))))
    return out
