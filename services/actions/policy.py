"""The actions policy: a TOML file of rules, each turning a confident prediction into actions."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from shared.errors import UserError
from shared.messages import Prediction

DEFAULT_POLICY = Path(__file__).with_name("policy.toml")
_FIELDS = {"task", "label", "min_confidence", "min_precision", "repos", "add_labels", "milestone", "comment",
           "close"}
_EFFECTS = ("add_labels", "milestone", "comment", "close")


class PolicyError(UserError, ValueError):
    """The policy file is unreadable or a rule is malformed."""


@dataclass(frozen=True)
class Intent:
    """One action a rule asks for on one issue: ``kind`` is one of shared.actions.KINDS."""

    kind: str
    target: str  # labels, comma-separated; a milestone title; the comment's text; "" to close
    rule: int  # index in the file, from 1


@dataclass(frozen=True)
class Rule:
    index: int
    task: str
    label: str
    min_confidence: float | None
    min_precision: float | None
    repos: frozenset[str] | None
    intents: tuple[Intent, ...]

    def fires(self, p: Prediction) -> bool:
        """The prediction is this rule's task and label, at least as confident as it asks, and the
        precision measured at that confidence at least what it asks (a prediction that carries no
        measured precision never meets a ``min_precision``)."""
        return (p.task == self.task and p.label == self.label
                and (self.min_confidence is None or p.confidence >= self.min_confidence)
                and (self.min_precision is None or (p.precision is not None
                                                    and p.precision >= self.min_precision))
                and (self.repos is None or p.repo in self.repos))


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    source: str

    def intents(self, p: Prediction) -> list[Intent]:
        """What the policy asks for on this prediction's issue, each kind once (the first rule wins),
        in a fixed order: labels and milestone before the comment, the comment before closing."""
        chosen: dict[str, Intent] = {}
        for rule in self.rules:
            if rule.fires(p):
                for intent in rule.intents:
                    chosen.setdefault(intent.kind, intent)
        order = ("label", "milestone", "comment", "close")
        return [chosen[kind] for kind in order if kind in chosen]


def load_policy(path: Path | str | None = None) -> Policy:
    path = Path(path) if path else DEFAULT_POLICY
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read the actions policy {path}: {exc.strerror or exc}") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "policy") -> Policy:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from None
    rules = doc.get("rule", [])
    if set(doc) - {"rule"} or not isinstance(rules, list):
        raise PolicyError(f"{source}: only [[rule]] tables belong in an actions policy")
    return Policy(tuple(_rule(rule, i, f"{source}: rule {i}") for i, rule in enumerate(rules, 1)), source)


def _rule(rule: dict, index: int, where: str) -> Rule:
    unknown = set(rule) - _FIELDS
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("task", "label"):
        if not isinstance(rule.get(key), str) or not rule[key]:
            raise PolicyError(f"{where}: {key} must be a non-empty string")
    bounds = {key: _unit(rule, key, where) for key in ("min_confidence", "min_precision")}
    if bounds == {"min_confidence": None, "min_precision": None}:
        raise PolicyError(f"{where}: says neither min_confidence nor min_precision")
    if not any(key in rule for key in _EFFECTS):
        raise PolicyError(f"{where}: says what to do with none of {', '.join(_EFFECTS)}")
    repos = rule.get("repos")
    if repos is not None and (not isinstance(repos, list) or not all(isinstance(r, str) and "/" in r
                                                                     for r in repos)):
        raise PolicyError(f"{where}: repos must be a list of \"owner/name\" strings")
    return Rule(index, rule["task"], rule["label"], bounds["min_confidence"], bounds["min_precision"],
                frozenset(repos) if repos is not None else None, tuple(_intents(rule, index, where)))


def _unit(rule: dict, key: str, where: str) -> float | None:
    value = rule.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise PolicyError(f"{where}: {key} must be a number from 0 to 1")
    return float(value)


def _intents(rule: dict, index: int, where: str) -> list[Intent]:
    out = []
    if "add_labels" in rule:
        labels = rule["add_labels"]
        if not isinstance(labels, list) or not labels or not all(
                isinstance(x, str) and x.strip() and "," not in x for x in labels):
            raise PolicyError(f"{where}: add_labels must be a list of label names (no commas)")
        out.append(Intent("label", ",".join(x.strip() for x in labels), index))
    for key, kind in (("milestone", "milestone"), ("comment", "comment")):
        if key in rule:
            if not isinstance(rule[key], str) or not rule[key].strip():
                raise PolicyError(f"{where}: {key} must be a non-empty string")
            out.append(Intent(kind, rule[key].strip(), index))
    if "close" in rule:
        if not isinstance(rule["close"], bool):
            raise PolicyError(f"{where}: close must be true or false")
        if rule["close"]:
            out.append(Intent("close", "", index))
    return out
