"""Hostile deliveries mixed with valid ones, and the end-to-end count of what became of each.

The strategies build signed ``issues`` webhooks in GitHub's payload shape (``services.samples``);
a hostile one has hostile values (lone surrogates, NUL, 100,000 characters, numbers past 2⁶³, NaN,
wrong types, missing keys) in one to three of its string and number fields. ``count`` holds the
pipeline's effects against what was sent, as Jepsen's queue checker does, and states the invariant:

- every valid delivery is accepted and has exactly one prediction per routed task, no dead letter,
  and its latest documents;
- every hostile one is refused at ingest (4xx), or accepted and then, per task its logged event
  routes to, predicted exactly once or dead-lettered; an event the dispatcher cannot route is
  dead-lettered; every dead letter holds one message (never a batch) of a hostile delivery.
"""

from __future__ import annotations

import json
import math
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from services.ingest.signature import sign
from services.samples import issue_payload
from shared.messages import BATCH_KIND

REPO = "webcompat/web-bugs"
TASKS = ("issuetype", "needsdiagnosis")  # what the default rules route a valid issues.opened to
NASTY_TEXT = ("\ud800", "\udfff", "a\udbffb", "\x00", "nul\x00inside", "\u202eevil", "\ufeff", "\r\n\r\n",
              "%s%n%x", "'; DROP TABLE predictions;--", "<script>alert(1)</script>", "../../../etc/passwd",
              "\U0010ffff", "", " ", "x" * 100_000, "🙂" * 2_000, "\\u0000",
              "<!--" * 25_000, " \n" * 50_000, "<a" * 50_000, "![a](" * 20_000)  # quadratic for some regexes
NASTY_NUMBERS = (-1, 0, 2**31, 2**31 - 1, 2**63, -(2**63) - 1, 2**70, 10**300, 1.5, -0.0, math.inf, math.nan,
                 True, False)
FIELDS = (("action",), ("issue", "number"), ("issue", "title"), ("issue", "body"), ("issue", "state"),
          ("issue", "user", "login"), ("issue", "user", "id"), ("issue", "user", "type"), ("issue", "labels"),
          ("issue", "html_url"), ("issue", "url"), ("repository", "full_name"), ("repository", "name"),
          ("repository", "owner", "login"), ("sender", "login"), ("sender", "id"), ("sender", "type"))
MISSING = object()  # a field taken out of the payload


def _texts() -> st.SearchStrategy[str]:
    return st.text(max_size=40) | st.builds("".join, st.lists(
        _one_of(NASTY_TEXT) | st.text(max_size=8), min_size=1, max_size=4))


def _one_of(values: tuple) -> st.SearchStrategy[Any]:
    """``sampled_from`` without its repr: hypothesis would print every 100,000-character value."""
    return st.integers(0, len(values) - 1).map(values.__getitem__)


def _hostile_values() -> st.SearchStrategy[Any]:
    scalars = _texts() | _one_of(NASTY_NUMBERS) | st.integers() | st.none()
    labels = st.lists(st.fixed_dictionaries({"name": _texts()}), min_size=1, max_size=3)
    return (scalars | st.just(MISSING) | st.lists(scalars, max_size=3)
            | st.dictionaries(_texts(), scalars, max_size=3) | labels)


@dataclass(frozen=True)
class Sent:
    delivery_id: str
    body: bytes
    hostile: bool
    what: str  # the fields made hostile, for a failure's message


def _with(payload: dict, path: tuple[str, ...], value: Any) -> None:
    node = payload
    for key in path[:-1]:
        node = node[key]
    if value is MISSING:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


def _body(payload: Any) -> bytes:
    return json.dumps(payload).encode()  # lone surrogates escaped (valid JSON), NaN as GitHub never would


def valid(number: int) -> st.SearchStrategy[Sent]:
    """An ``issues.opened`` as GitHub sends it: any title and body a person could type."""
    return st.builds(lambda title, body: Sent(f"valid-{number}", _body(issue_payload(
        number=number, title=title or None, body=body or None, repo=REPO)), False, "valid"),
        st.text(max_size=120), st.text(max_size=400))


def hostile(number: int) -> st.SearchStrategy[Sent]:
    def build(changes: list[tuple[tuple[str, ...], Any]]) -> Sent:
        payload = issue_payload(number=number, repo=REPO)
        for path, value in changes:
            _with(payload, path, value)
        what = ", ".join(".".join(path) for path, _ in changes)
        return Sent(f"hostile-{number}", _body(payload), True, what)

    change = st.tuples(st.sampled_from(FIELDS), _hostile_values())
    return st.lists(change, min_size=1, max_size=3, unique_by=lambda c: c[0]).map(build)


def deliveries(first_number: int, count: int) -> st.SearchStrategy[list[Sent]]:
    """``count`` deliveries, about half hostile, numbered from ``first_number`` (one issue each)."""
    return st.tuples(*(st.booleans().flatmap(lambda bad, n=n: hostile(n) if bad else valid(n))
                       for n in range(first_number, first_number + count))).map(list)


@dataclass
class Posted:
    """What ingest answered each delivery: its status (0: no answer) and reason."""

    answers: dict[str, int] = field(default_factory=dict)
    sent: dict[str, Sent] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post_all(self, url: str, secret: str, batch: Iterable[Sent], clients: int = 8) -> None:
        with ThreadPoolExecutor(clients) as pool:
            for item, status in zip(batch, pool.map(lambda s: post(url, secret, s), batch), strict=True):
                with self.lock:
                    self.sent[item.delivery_id] = item
                    self.answers[item.delivery_id] = status

    @property
    def accepted(self) -> set[str]:
        return {d for d, status in self.answers.items() if status in (200, 202)}


def post(url: str, secret: str, item: Sent) -> int:
    """One signed delivery; the status ingest answered (0: no answer)."""
    request = urllib.request.Request(url, data=item.body, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": item.delivery_id,
        "X-Hub-Signature-256": sign(secret, item.body)})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


ROUTE_ERROR = "dispatcher"  # the logged event routes to no task message: its dead letter is the event


def count(posted: Posted, routed: dict[str, list[str] | str], predictions: Iterable[tuple[str, str]],
          dead: Iterable[tuple[bytes, str]], has_document: Callable[[str, int], bool]) -> dict[str, Any]:
    """The report: ``routed`` maps each logged delivery to its tasks (or ``ROUTE_ERROR``),
    ``predictions`` are the stored (delivery, task) rows, ``dead`` the dead letters (body, reason), and
    ``has_document(task, number)`` says whether an issue's latest document is written."""
    seen: dict[tuple[str, str], int] = {}
    for key in predictions:
        seen[key] = seen.get(key, 0) + 1
    dead_for: dict[str, list[str | None]] = {}  # delivery -> the task of each dead letter (None: the event)
    batches = undecodable = 0
    reasons: dict[str, int] = {}
    for body, reason in dead:
        reason = re.sub(r"(valid|hostile)-\d+", r"\1-N", reason or "?")[:70]
        reasons[reason] = reasons.get(reason, 0) + 1
        try:
            message = json.loads(body)
        except ValueError:
            undecodable += 1
            continue
        items = message.get("items") or [] if message.get("kind") == BATCH_KIND else [message]
        batches += message.get("kind") == BATCH_KIND
        for item in items:
            dead_for.setdefault(item.get("delivery_id"), []).append(item.get("task"))
    accepted = posted.accepted
    valid = {d for d, s in posted.sent.items() if not s.hostile}
    hostile = set(posted.sent) - valid
    lost: list[str] = []
    for delivery in sorted(accepted):
        tasks = routed.get(delivery)
        if tasks is None:
            lost.append(f"{delivery}: accepted, not in the log")
        elif tasks == ROUTE_ERROR:
            if not dead_for.get(delivery):
                lost.append(f"{delivery}: unroutable and not dead-lettered")
        else:
            lost.extend(f"{delivery}/{task}: neither predicted nor dead-lettered" for task in tasks
                        if not seen.get((delivery, task))
                        and not {task, None} & set(dead_for.get(delivery, ())))
    valid_tasks = {d: routed.get(d) for d in valid & accepted}
    documents_missing = [f"{d}/{t}" for d, tasks in valid_tasks.items() if isinstance(tasks, list)
                         for t in tasks if not has_document(t, int(d.split("-")[1]))]
    return {
        "sent": len(posted.sent), "valid": len(valid), "hostile": len(hostile),
        "valid_accepted": len(valid & accepted), "hostile_refused": len(hostile - accepted),
        "hostile_accepted": len(hostile & accepted),
        "refusals": _tally(posted.answers[d] for d in posted.sent if d not in accepted),
        "valid_refused": sorted(f"{d} ({posted.answers[d]})" for d in valid - accepted)[:10],
        "valid_not_routed_to_both": sorted(d for d, t in valid_tasks.items()
                                           if t == ROUTE_ERROR or sorted(t or []) != list(TASKS)),
        "predictions": sum(seen.values()),
        "lost": len(lost), "lost_examples": lost[:10],
        "duplicated": sum(n - 1 for n in seen.values() if n > 1),
        "unexpected": len({d for d, _ in seen} - accepted),
        "dead_letters": sum(map(len, dead_for.values())) + undecodable,
        "dead_letters_of_valid_deliveries": sum(len(t) for d, t in dead_for.items() if d in valid),
        "dead_letters_holding_a_batch": batches,
        "dead_letters_not_json": undecodable,
        "hostile_dead_lettered": len({d for d in dead_for if d in hostile}),
        "dead_letter_reasons": dict(sorted(reasons.items(), key=lambda r: -r[1])[:12]),
        "latest_documents_missing": len(documents_missing),
        "documents_missing_examples": documents_missing[:10],
    }


def _tally(statuses: Iterable[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for status in statuses:
        out[str(status)] = out.get(str(status), 0) + 1
    return dict(sorted(out.items()))


def assert_invariant(report: dict[str, Any]) -> None:
    assert report["valid_accepted"] == report["valid"], report
    assert report["valid_not_routed_to_both"] == [], report
    assert (report["lost"], report["duplicated"], report["unexpected"]) == (0, 0, 0), report
    assert report["dead_letters_of_valid_deliveries"] == 0, report
    assert report["dead_letters_holding_a_batch"] == report["dead_letters_not_json"] == 0, report
    assert report["latest_documents_missing"] == 0, report
