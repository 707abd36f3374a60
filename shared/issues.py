"""From a GitHub issue to the ``IssueSnapshot`` a model reads: one mapping for serving and training.

The dispatcher (a webhook's ``issue``), the training data builders (REST API issues from an export or
the event log) and the data set readers (our own flat rows, the NLBSE'24 CSV) all call these two
functions, so a model sees at prediction time exactly the fields, and the fallbacks, it was trained on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.messages import IssueSnapshot

LONE_SURROGATE = re.compile("[\ud800-\udfff]")


_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}\Z")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}\Z")


def valid_repo(repo: str) -> bool:
    """``owner/name`` as GitHub allows them (and safe as parts of S3 keys)."""
    owner, _, name = repo.partition("/")
    return bool(_OWNER.match(owner) and _NAME.match(name) and name not in (".", ".."))


def representable(text: str) -> str:
    """``text`` with each lone surrogate (valid JSON, ``"\\ud800"``, but no character: nothing can
    encode it) as U+FFFD, the replacement character. Ingest refuses webhooks that hold one; this is the
    rule for text that reaches a snapshot anyway (imported history, events logged before that check),
    the same in serving and training since both build snapshots here."""
    return text if text.isascii() else LONE_SURROGATE.sub("\ufffd", text)


class NotAnIssueError(ValueError):
    """A payload or row that carries no usable issue (no issue object, or no issue number)."""


def issue_url(repo: str, number: int, html_url: Any = None) -> str:
    """The issue's page: ``html_url`` when given, else the one GitHub gives every issue ("" without repo)."""
    if isinstance(html_url, str) and html_url:
        return html_url
    return f"https://github.com/{repo}/issues/{number}" if repo else ""


def repo_of(issue: Mapping[str, Any]) -> str:
    """``owner/name`` from an export's ``repo`` field or the API's ``repository_url``/``html_url``."""
    if issue.get("repo"):
        return str(issue["repo"])
    url = str(issue.get("repository_url") or issue.get("html_url") or "")
    if "/repos/" in url:
        return "/".join(url.split("/repos/", 1)[1].split("/")[:2])
    parts = url.split("github.com/", 1)[-1].split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 else ""


def _label_names(labels: Any) -> tuple[str, ...]:
    """Label names from the API's label objects (a bare name is taken as is)."""
    names = []
    for label in labels if isinstance(labels, list | tuple) else ():
        name = label.get("name") if isinstance(label, Mapping) else label
        if isinstance(name, str):
            names.append(representable(name))
    return tuple(names)


def snapshot_of_issue(issue: Any, repo: str | None = None, *, title: str | None = None) -> IssueSnapshot:
    """A GitHub issue object (a webhook's ``issue`` or a REST API issue) as a snapshot.

    ``repo`` wins, else the issue's own ``repo``/``repository_url``/``html_url``; ``title`` replaces the
    issue's current title (a task may train on the title as reported). Raises ``NotAnIssueError``
    without an issue object or an integer ``number``."""
    if not isinstance(issue, Mapping):
        raise NotAnIssueError("no issue object")
    number = issue.get("number")
    if not isinstance(number, int) or isinstance(number, bool):
        raise NotAnIssueError(f"the issue has no number (got {number!r})")
    repo = repo or repo_of(issue)
    user = issue.get("user")
    login = user.get("login") if isinstance(user, Mapping) else None
    return IssueSnapshot(
        repo=representable(repo), number=number,
        url=representable(issue_url(repo, number, issue.get("html_url"))),
        title=representable(str(issue.get("title") or "") if title is None else title),
        body=representable(str(issue.get("body") or "")),
        author=representable(login) if isinstance(login, str) else None,
        labels=_label_names(issue.get("labels")),
    )


def snapshot_of_record(row: Mapping[str, Any], *, number: int | None = None) -> IssueSnapshot:
    """One of our flat data set or demo rows (repo, number, url, title, body, author) or an NLBSE'24
    CSV row (repo, title, body; no number: ``number``, e.g. the line, stands in). Raises
    ``NotAnIssueError`` when neither gives an issue number."""
    if not isinstance(row, Mapping):
        raise NotAnIssueError(f"expected an object with the issue's fields, got {type(row).__name__}")
    raw = row.get("number")
    try:
        issue_number = int(raw) if raw not in (None, "") else int(number)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise NotAnIssueError(f"the issue has no number (got {raw!r})") from None
    repo = str(row.get("repo") or "")
    author = row.get("author")
    return IssueSnapshot(
        repo=representable(repo), number=issue_number,
        url=representable(issue_url(repo, issue_number, row.get("url"))),
        title=representable(str(row.get("title") or "")), body=representable(str(row.get("body") or "")),
        author=representable(str(author)) if author else None,
    )


__all__ = ["NotAnIssueError", "issue_url", "repo_of", "representable", "snapshot_of_issue",
           "snapshot_of_record"]
