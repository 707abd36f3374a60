"""A fake api.github.com on loopback, for the history import's tests over real HTTP.

It serves (a) recorded traffic from the npm package ``@octokit/fixtures`` (installed by scripts/test
into .cache/; ``Link`` URLs rewritten to this server) and (b) synthetic repositories in the same
shapes (``SyntheticRepo``: thousands of issues, their events, pull requests among them), with what
GitHub's REST API does around them: ``Link`` pagination, ``ETag`` and 304 answers that cost no
rate limit, a primary rate limit (``X-RateLimit-*``; 403 with ``remaining 0`` when spent), secondary
limits (429/403 with ``Retry-After``), 401 on a wrong token, issues GitHub will not serve (deleted:
410, transferred: 404, 451, a lasting 5xx) and injected failures (a connection dropped without an
answer: an interrupted import).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

FIXTURES = (Path(__file__).parent.parent / ".cache/octokit/node_modules/@octokit/fixtures"
            / "scenarios/api.github.com")
FIXTURES_VERSION = "23.1.2"
TOKEN = "0000000000000000000000000000000000000001"  # the token the fixtures were recorded with


def scenario(name: str) -> list[dict[str, Any]]:
    """A recorded @octokit/fixtures scenario: its requests and GitHub's answers."""
    path = FIXTURES / name / "normalized-fixture.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/test, or npm install --prefix .cache/octokit "
                    f"@octokit/fixtures@{FIXTURES_VERSION}", pytrace=False)
    return json.loads(path.read_text())


# -- a synthetic repository -------------------------------------------------------------------

LABELS = [("browser-firefox", "d4c5f9"), ("browser-chrome", "c2e0c6"), ("type-bug", "e11d21"),
          ("type-feature", "84b6eb"), ("priority-normal", "fbca04"), ("action-needsmoderation", "ededed"),
          ("engine-gecko", "5319e7"), ("status-needsinfo", "bfd4f2")]
MILESTONES = ["needstriage", "needsdiagnosis", "needscontact", "sitewait", "duplicate"]
USERS = ["webcompat-bot", "alice", "bob", "carol", "dave"]
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def _time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(login: str) -> dict[str, Any]:
    uid = 100 + USERS.index(login) if login in USERS else 999
    return {"login": login, "id": uid, "node_id": f"U_{uid}", "type": "User", "site_admin": False,
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "url": f"https://api.github.com/users/{login}", "html_url": f"https://github.com/{login}"}


@dataclass
class SyntheticIssue:
    number: int
    created: datetime
    title: str
    user: str
    pull_request: bool = False
    state: str = "open"
    labels: list[str] = field(default_factory=list)
    milestone: str | None = None
    assignees: list[str] = field(default_factory=list)
    closed_at: datetime | None = None
    updated: datetime | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    body: str | None = None  # None: a short one made from the number


class SyntheticRepo:
    """``issues`` issues (plus a pull request every ``pr_every`` numbers, left out by the import) with
    about ``events_per_issue`` events each, drawn from a seeded generator: the same repository every
    time. One issue (#7, when there are that many) has ``long_history`` events: more than a page."""

    def __init__(self, full_name: str = "webcompat/web-bugs", *, issues: int = 3000, seed: int = 14,
                 events_per_issue: float = 5.0, pr_every: int = 20, long_history: int = 250):
        self.full_name = full_name
        self.owner, self.name = full_name.split("/")
        self.id = 17839063
        self.issue_id_base = 500_000  # an issue's id is this plus its number
        self.rng = random.Random(seed)
        self.next_event_id = 1_000_000_000
        self.issues: dict[int, SyntheticIssue] = {}
        self.refused: dict[int, tuple[int, str, int]] = {}  # number -> (status, message, from page)
        self.removed: set[int] = set()  # deleted: not listed any more (``remove``)
        self.lock = threading.Lock()
        number = 0
        made = 0
        while made < issues:
            number += 1
            created = EPOCH + timedelta(hours=number)
            is_pr = pr_every > 0 and number % pr_every == 0
            issue = SyntheticIssue(number, created, f"site{number}.example - page does not load",
                                   self.rng.choice(USERS), pull_request=is_pr, updated=created)
            self.issues[number] = issue
            if is_pr:
                continue
            made += 1
            count = long_history if number == 7 else self.rng.randint(0, int(2 * events_per_issue))
            for _ in range(count):
                self._random_event(issue)

    # the history of one issue, kept consistent (a label is removed only if present, …)
    def _random_event(self, issue: SyntheticIssue) -> None:
        rng = self.rng
        choices = ["labeled", "labeled", "renamed", "milestoned", "assigned", "subscribed", "mentioned"]
        if issue.labels:
            choices.append("unlabeled")
        if issue.milestone:
            choices.append("demilestoned")
        if issue.assignees:
            choices.append("unassigned")
        choices.append("closed" if issue.state == "open" else "reopened")
        kind = rng.choice(choices)
        extra: dict[str, Any] = {}
        if kind == "labeled":
            free = [lb for lb in LABELS if lb[0] not in issue.labels]
            if not free:
                kind, extra = "unlabeled", {}
            else:
                name, color = rng.choice(free)
                extra = {"label": {"name": name, "color": color}}
        if kind == "unlabeled":
            name = rng.choice(issue.labels)
            extra = {"label": {"name": name, "color": dict(LABELS).get(name, "ededed")}}
        if kind == "milestoned":
            extra = {"milestone": {"title": rng.choice(MILESTONES)}}
        if kind == "demilestoned":
            extra = {"milestone": {"title": issue.milestone}}
        if kind == "renamed":
            renamed = f"{issue.title.split(' (')[0]} ({rng.random():.6f})"
            extra = {"rename": {"from": issue.title, "to": renamed}}
        if kind == "assigned":
            extra = {"assignee": _user(rng.choice(USERS[1:]))}
        if kind == "unassigned":
            extra = {"assignee": _user(rng.choice(issue.assignees))}
        self.add_event(issue.number, kind, rng.choice(USERS), **extra)

    def add_event(self, number: int, kind: str, actor: str | None, at: datetime | None = None,
                  **extra: Any) -> dict[str, Any]:
        """Record an event on issue ``number`` (at ``at``, else a few minutes after its last change)
        and change the issue as GitHub would, its ``updated_at`` the event's time (``actor`` None: a
        user since deleted). Safe while served."""
        with self.lock:
            issue = self.issues[number]
            at = at or (issue.updated or issue.created) + timedelta(minutes=1 + self.rng.randint(0, 30))
            self.next_event_id += 1
            event = {"id": self.next_event_id, "node_id": f"E_{self.next_event_id}",
                     "url": f"https://api.github.com/repos/{self.full_name}/issues/events/{self.next_event_id}",
                     "actor": _user(actor) if actor else None, "event": kind, "commit_id": None,
                     "commit_url": None, "created_at": _time(at), "performed_via_github_app": None, **extra}
            if kind == "labeled":
                issue.labels.append(extra["label"]["name"])
            elif kind == "unlabeled":
                issue.labels.remove(extra["label"]["name"])
            elif kind == "milestoned":
                issue.milestone = extra["milestone"]["title"]
            elif kind == "demilestoned":
                issue.milestone = None
            elif kind == "renamed":
                issue.title = extra["rename"]["to"]
            elif kind == "assigned":
                if extra["assignee"]["login"] not in issue.assignees:
                    issue.assignees.append(extra["assignee"]["login"])
            elif kind == "unassigned":
                issue.assignees.remove(extra["assignee"]["login"])
            elif kind == "closed":
                issue.state, issue.closed_at = "closed", at
                event["state_reason"] = "completed"
            elif kind == "reopened":
                issue.state, issue.closed_at = "open", None
            issue.events.append(event)
            issue.updated = at
            return event

    def open_issue(self, title: str, user: str, at: datetime) -> SyntheticIssue:
        """A new issue, opened at ``at`` (the next number). Safe while served."""
        with self.lock:
            number = max(self.issues, default=0) + 1
            issue = SyntheticIssue(number, at, title, user, updated=at)
            self.issues[number] = issue
            return issue

    def edit(self, number: int, at: datetime) -> None:
        """A change that is no event (a body edit, a comment): only ``updated_at`` moves."""
        with self.lock:
            self.issues[number].updated = at

    def remove(self, number: int) -> None:
        """Deleted as GitHub deletes: gone from the list of issues, 410 for it and its events."""
        with self.lock:
            self.removed.add(number)
        self.refuse(number, 410, "This issue was deleted")

    # issues GitHub will not serve, though the list of issues still has them
    def refuse(self, number: int, status: int, message: str, *, from_page: int = 1) -> None:
        """Answer ``status`` with GitHub's ``message`` for the issue's events from page ``from_page``
        on (and for the issue itself when that is the first page); ``readable`` lifts it."""
        self.refused[number] = (status, message, from_page)

    def delete(self, number: int) -> None:
        self.refuse(number, 410, "This issue was deleted")

    def transfer(self, number: int) -> None:
        self.refuse(number, 404, "Not Found")

    def readable(self, number: int) -> None:
        self.refused.pop(number, None)

    def refusal(self, number: int, page: int | None) -> tuple[int, str] | None:
        """GitHub's answer for the issue (``page`` None) or a page of its events, if it refuses."""
        status, message, from_page = self.refused.get(number, (0, "", 0))
        if not status or (page or 1) < from_page or (page is None and from_page > 1):
            return None
        return status, message

    # the REST shapes
    def repository(self) -> dict[str, Any]:
        return {"id": self.id, "node_id": "R_web_bugs", "name": self.name, "full_name": self.full_name,
                "private": False, "owner": _user(self.owner) | {"type": "Organization"},
                "html_url": f"https://github.com/{self.full_name}",
                "url": f"https://api.github.com/repos/{self.full_name}", "default_branch": "master"}

    def issue_json(self, issue: SyntheticIssue) -> dict[str, Any]:
        base = f"https://api.github.com/repos/{self.full_name}/issues/{issue.number}"
        milestone = None
        if issue.milestone:
            index = MILESTONES.index(issue.milestone) + 1
            milestone = {"id": 5000 + index, "number": index, "title": issue.milestone, "state": "open",
                         "url": f"https://api.github.com/repos/{self.full_name}/milestones/{index}"}
        body = {
            "url": base, "repository_url": f"https://api.github.com/repos/{self.full_name}",
            "events_url": base + "/events", "html_url": f"https://github.com/{self.full_name}/issues/{issue.number}",
            "id": self.issue_id_base + issue.number, "node_id": f"I_{issue.number}", "number": issue.number,
            "title": issue.title, "user": _user(issue.user),
            "labels": [{"id": 9000 + i, "node_id": f"L_{i}", "name": name, "color": color,
                        "default": False, "description": None}
                       for i, (name, color) in enumerate([*LABELS, *((n, "ededed") for n in issue.labels
                                                                   if n not in dict(LABELS))])
                       if name in issue.labels],
            "state": issue.state, "locked": False,
            "assignee": _user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [_user(a) for a in issue.assignees], "milestone": milestone,
            "comments": len(issue.comments),
            "created_at": _time(issue.created), "updated_at": _time(issue.updated or issue.created),
            "closed_at": _time(issue.closed_at) if issue.closed_at else None,
            "author_association": "NONE", "active_lock_reason": None,
            "body": issue.body if issue.body is not None
            else f"**URL**: https://site{issue.number}.example/\n\nThe page stays blank.",
            "state_reason": "completed" if issue.state == "closed" else None,
        }
        if issue.pull_request:
            body["pull_request"] = {"url": f"https://api.github.com/repos/{self.full_name}/pulls/{issue.number}"}
        return body

    def listed(self, since: str | None, sort: str | None = None) -> list[SyntheticIssue]:
        """The issues GitHub lists (updated at or after ``since``), by creation or (``sort`` "updated")
        by last change, oldest first."""
        with self.lock:
            chosen = [i for i in self.issues.values() if i.number not in self.removed]
            if sort == "updated":
                chosen.sort(key=lambda i: (i.updated or i.created, i.number))
            else:
                chosen.sort(key=lambda i: i.created)
            if since:
                chosen = [i for i in chosen if _time(i.updated or i.created) >= since]
            return chosen

    def listed_json(self, since: str | None, sort: str | None = None) -> list[dict[str, Any]]:
        issues = self.listed(since, sort)
        with self.lock:  # no change half-made while it is written
            return [self.issue_json(i) for i in issues]

    def expected_deliveries(self) -> list[tuple[int, str]]:
        """(issue number, GitHub event id or ``opened``) for every event the import must log: pull
        requests and issues GitHub refuses left out."""
        from services.ingest.github.history import ACTIONS

        out = []
        for issue in sorted(self.issues.values(), key=lambda i: i.created):
            if issue.pull_request or issue.number in self.refused:
                continue
            out.append((issue.number, "opened"))
            out.extend((issue.number, str(e["id"])) for e in issue.events if e["event"] in ACTIONS)
        return out


# -- the server -------------------------------------------------------------------------------

@dataclass
class RateLimit:
    limit: int = 5000
    remaining: int = 5000
    reset: float = 0.0  # epoch seconds
    window: float = 3600.0

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(int(self.reset)),
                "X-RateLimit-Used": str(self.limit - self.remaining),
                "X-RateLimit-Resource": "core"}


Answer = tuple[int, dict[str, str], bytes]  # status, headers, body


class FakeGitHub:
    """``with FakeGitHub() as gh:`` serves on ``gh.url`` until the block ends."""

    def __init__(self, *, token: str | None = TOKEN):
        self.token = token
        self.repos: dict[str, SyntheticRepo] = {}
        self.recorded: dict[str, dict[str, Any]] = {}  # path?query -> a recorded answer
        self.overrides: dict[str, tuple[int, dict[str, str], Any]] = {}  # path -> (status, headers, body)
        self.rate = RateLimit(reset=time.time() + 3600)
        self.lock = threading.Lock()
        self.log: list[tuple[float, str, int]] = []  # (time, path?query, status) of every request; 0: dropped
        self.secondary: dict[int, tuple[int, int]] = {}  # request index -> (status, Retry-After seconds)
        self.drops: set[int] = set()  # request indexes answered by closing the connection
        self.exhaustions: dict[int, float] = {}  # request index -> seconds until the budget is back
        self.exhausted: list[tuple[float, float]] = []  # (when, announced reset) of each exhaustion
        self.count = 0
        self.hooks: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (repo, hook id) -> its deliveries
        self.redelivered: list[tuple[str, str, str]] = []  # (repo, hook id, delivery id) of each POST
        self.writes: list[tuple[str, str, Any]] = []  # (method, path, JSON body) of each write to an issue
        self.actor = "wcml-bot"  # whose token it is: the actor of the events our writes make
        self.app: tuple[str, bytes] | None = None  # a GitHub App: its id and public key (PEM)
        self.before_answer: Callable[[str], None] | None = None  # called with path?query of each request
        self.failures: dict[int, int] = {}  # request index -> the 5xx status it is answered with
        self._graphql = None  # POST /graphql (tests/github_graphql_fake.py), made at first use
        self._server: ThreadingHTTPServer | None = None

    @property
    def graphql(self):
        """The GraphQL endpoint over the same repositories: its points budget, what it charged."""
        if self._graphql is None:
            from tests.github_graphql_fake import GraphQLEndpoint

            self._graphql = GraphQLEndpoint(self)
        return self._graphql

    # -- what it serves
    def add_repo(self, repo: SyntheticRepo) -> SyntheticRepo:
        self.repos[repo.full_name] = repo
        return repo

    def add_recorded(self, name: str) -> None:
        """Serve a recorded @octokit/fixtures scenario at its own paths."""
        for answer in scenario(name):
            self.recorded[answer["path"]] = answer

    def add_hook(self, repo: str, hook_id: int, deliveries: list[dict[str, Any]]) -> None:
        """A repository webhook and its recent deliveries, newest first, as GitHub lists them."""
        self.hooks[(repo, str(hook_id))] = deliveries

    def add_app_hook(self, app_id: str, public_key: bytes, deliveries: list[dict[str, Any]]) -> None:
        """A GitHub App (it signs its JWTs with the private half of ``public_key``) and its webhook's
        recent deliveries, served at /app/hook/deliveries."""
        self.app = (app_id, public_key)
        self.hooks[("app", "")] = deliveries

    def answer(self, path: str, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.overrides[path] = (status, headers or {}, body)

    # -- failures
    def drop_request(self, after: int) -> None:
        """The ``after``-th request from now gets no answer: the connection is closed."""
        self.drops.add(self.count + after)

    def fail_request(self, after: int, status: int = 502) -> None:
        """The ``after``-th request from now is answered ``status`` (a server error GitHub gives now and
        then), whatever it asks."""
        self.failures[self.count + after] = status

    def secondary_limit(self, after: int, status: int = 429, retry_after: int = 1) -> None:
        self.secondary[self.count + after] = (status, retry_after)

    def set_rate_limit(self, *, limit: int, window: float) -> None:
        with self.lock:
            self.rate = RateLimit(limit, limit, time.time() + window, window)

    def exhaust_after(self, after: int, reset_in: float) -> None:
        """At the ``after``-th request from now the whole budget is spent (as another client with the
        same token would spend it); it comes back ``reset_in`` seconds later, rounded up to a whole
        second as GitHub announces it."""
        self.exhaustions[self.count + after] = reset_in

    # -- lifecycle
    def __enter__(self) -> FakeGitHub:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def statuses(self, containing: str = "") -> list[int]:
        return [status for _, path, status in self.log if containing in path]

    # -- answering
    def handle(self, method: str, target: str, headers, body: bytes = b"") -> Answer | None:
        if self.before_answer is not None:
            self.before_answer(target)  # the repository changing while it is read
        with self.lock:
            self.count += 1
            index = self.count
        if index in self.drops:
            return None
        if index in self.failures:
            return self._json(self.failures[index], {"message": "Server Error"}, counted=False)
        if index in self.exhaustions:
            with self.lock:
                now = time.time()
                self.rate.remaining = 0
                self.rate.reset = float(int(now + self.exhaustions[index]) + 1)
                self.exhausted.append((now, self.rate.reset))
        if method not in ("GET", "POST", "PATCH"):
            return 405, {}, b""
        if target.startswith("/app/"):
            return self._app(method, target, headers)
        if self.token is not None:
            auth = headers.get("Authorization", "")
            if auth not in (f"token {self.token}", f"Bearer {self.token}"):
                return self._json(401, {"message": "Bad credentials",
                                        "documentation_url": "https://docs.github.com/rest"}, counted=True)
        if method == "POST" and urlsplit(target).path in ("/graphql", "/api/graphql"):
            if index in self.secondary:
                return self._secondary(index)
            return self.graphql.answer(body, index)
        if method != "GET" and urlsplit(target).path in self.overrides:
            status, extra, body_out = self.overrides[urlsplit(target).path]
            return self._json(status, body_out, extra, counted=True)
        recorded = self.recorded.get(target)
        if method != "GET" and recorded is not None and recorded["method"].upper() == method:
            sent = json.loads(body or b"null")
            with self.lock:
                self.writes.append((method, urlsplit(target).path, sent))
            if sent != recorded.get("body"):  # not the request GitHub answered: refuse it as GitHub would
                return self._json(422, {"message": "Validation Failed"}, counted=True)
            return self._recorded(recorded)
        if method == "POST" and "/hooks/" in target:
            return self._redelivery(urlsplit(target).path)
        if method in ("POST", "PATCH"):
            return self._write(method, urlsplit(target).path, json.loads(body or b"null"))
        if index in self.secondary:
            return self._secondary(index)
        with self.lock:
            now = time.time()
            if now >= self.rate.reset:
                self.rate.remaining, self.rate.reset = self.rate.limit, now + self.rate.window
            if self.rate.remaining <= 0:
                exhausted = True
            else:
                exhausted = False
        if exhausted:
            return self._json(403, {"message": "API rate limit exceeded for user ID 1.",
                                    "documentation_url": "https://docs.github.com/rest"}, counted=False)
        parts = urlsplit(target)
        if parts.path in self.overrides:
            status, extra, body = self.overrides[parts.path]
            return self._json(status, body, extra, counted=True)
        if target in self.recorded:
            return self._recorded(self.recorded[target])
        return self._synthetic(parts.path, dict(parse_qsl(parts.query)), headers)

    def _secondary(self, index: int) -> Answer:
        status, retry_after = self.secondary[index]
        body = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
                           "you try again.", "documentation_url": "https://docs.github.com/rest"}
        return self._json(status, body, {"Retry-After": str(retry_after)}, counted=False)

    def _redelivery(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts: 202."""
        parts = path.strip("/").split("/")
        if len(parts) == 8 and parts[0] == "repos" and parts[3] == "hooks" and parts[5] == "deliveries" \
                and parts[7] == "attempts":
            repo, hook, delivery = f"{parts[1]}/{parts[2]}", parts[4], parts[6]
            if any(str(d["id"]) == delivery for d in self.hooks.get((repo, hook), [])):
                self.redelivered.append((repo, hook, delivery))
                return self._json(202, {}, counted=True)
        return self._json(404, {"message": "Not Found"}, counted=True)

    def _app(self, method: str, target: str, headers) -> Answer:
        """The App's own endpoints: only a JWT the App signed (RS256, ``iss`` its id, not expired) opens
        them, as on GitHub; a token is refused."""
        import jwt

        auth = headers.get("Authorization", "")
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), self.app[1] if self.app else b"",
                                algorithms=["RS256"], options={"require": ["exp", "iat", "iss"]})
        except (jwt.PyJWTError, ValueError):
            claims = {}
        if not auth.startswith("Bearer ") or self.app is None or str(claims.get("iss")) != self.app[0]:
            return self._json(401, {"message": "A JSON web token could not be decoded"}, counted=True)
        parts = urlsplit(target)
        if method == "POST":
            delivery = parts.path.strip("/").split("/")[-2]
            if any(str(d["id"]) == delivery for d in self.hooks[("app", "")]):
                self.redelivered.append(("app", "", delivery))
                return self._json(202, {}, counted=True)
            return self._json(404, {"message": "Not Found"}, counted=True)
        if parts.path != "/app/hook/deliveries":
            return self._json(404, {"message": "Not Found"}, counted=True)
        return self._pages(parts.path, dict(parse_qsl(parts.query)), headers, list(self.hooks[("app", "")]))

    def _write(self, method: str, path: str, body: Any) -> Answer:
        """What the actions service sends: labels, comments, an issue's state or milestone."""
        parts = path.strip("/").split("/")
        repo = self.repos.get("/".join(parts[1:3])) if len(parts) >= 5 and parts[0] == "repos" else None
        if repo is None or parts[3] != "issues" or not parts[4].isdigit() or int(parts[4]) not in repo.issues:
            return self._json(404, {"message": "Not Found"}, counted=True)
        number, rest = int(parts[4]), parts[5:]
        with self.lock:
            self.writes.append((method, path, body))
        if method == "POST" and rest == ["labels"] and isinstance(body, dict):
            for name in body.get("labels") or []:
                if name not in repo.issues[number].labels:
                    repo.add_event(number, "labeled", self.actor, label={"name": name, "color": "ededed"})
            return self._json(200, repo.issue_json(repo.issues[number])["labels"], counted=True)
        if method == "POST" and rest == ["comments"] and isinstance(body, dict):
            with repo.lock:
                comment = {"id": len(repo.issues[number].comments) + 1, "body": body.get("body"),
                           "user": _user(self.actor)}
                repo.issues[number].comments.append(comment)
            return self._json(201, comment, counted=True)
        if method == "PATCH" and not rest and isinstance(body, dict):
            if body.get("state") == "closed" and repo.issues[number].state != "closed":
                repo.add_event(number, "closed", self.actor)
            if isinstance(body.get("milestone"), int):
                repo.add_event(number, "milestoned", self.actor,
                               milestone={"title": MILESTONES[body["milestone"] - 1]})
            return self._json(200, repo.issue_json(repo.issues[number]), counted=True)
        return self._json(422, {"message": "Validation Failed"}, counted=True)

    def _json(self, status: int, body: Any, extra: dict[str, str] | None = None, *, counted: bool,
              etag: str | None = None) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else b""
        with self.lock:
            if counted and self.rate.remaining > 0:
                self.rate.remaining -= 1
            headers = self.rate.headers()
        headers["Content-Type"] = "application/json; charset=utf-8"
        if etag:
            headers["ETag"] = etag
        headers.update(extra or {})
        return status, headers, data

    def _recorded(self, answer: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        headers = {k: str(v) for k, v in answer["headers"].items()
                   if k.lower() not in ("content-length", "connection", "transfer-encoding")}
        if "link" in headers:
            headers["link"] = headers["link"].replace("https://api.github.com", self.url)
        body = json.dumps(answer["response"]).encode() if answer["response"] != "" else b""
        return answer["status"], headers, body

    def _synthetic(self, path: str, query: dict[str, str], headers) -> Answer:
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos" or f"{parts[1]}/{parts[2]}" not in self.repos:
            return self._json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},
                              counted=True)
        repo = self.repos[f"{parts[1]}/{parts[2]}"]
        rest = parts[3:]
        if not rest:
            return self._json(200, repo.repository(), counted=True)
        if len(rest) in (2, 3) and rest[0] == "issues" and rest[1].isdigit() and rest[2:] in ([], ["events"]):
            refused = repo.refusal(int(rest[1]), int(query.get("page", 1)) if rest[2:] else None)
            if refused is not None:
                body = {"message": refused[1], "documentation_url": "https://docs.github.com/rest"}
                return self._json(refused[0], body, counted=True)
        if len(rest) == 2 and rest[0] == "issues" and rest[1].isdigit() and int(rest[1]) in repo.issues:
            return self._json(200, repo.issue_json(repo.issues[int(rest[1])]), counted=True)
        if len(rest) == 3 and rest[0] == "hooks" and rest[2] == "deliveries" \
                and (repo.full_name, rest[1]) in self.hooks:
            items = list(self.hooks[(repo.full_name, rest[1])])
        elif rest == ["issues"]:
            items = repo.listed_json(query.get("since"), query.get("sort"))
        elif rest == ["milestones"]:
            items = [{"number": i, "title": title, "state": "open"} for i, title in enumerate(MILESTONES, 1)]
        elif len(rest) == 3 and rest[0] == "issues" and rest[2] == "comments" and rest[1].isdigit() \
                and int(rest[1]) in repo.issues:
            with repo.lock:
                items = list(repo.issues[int(rest[1])].comments)
        elif len(rest) == 3 and rest[0] == "issues" and rest[2] == "events" and rest[1].isdigit() \
                and int(rest[1]) in repo.issues:
            with repo.lock:
                items = list(repo.issues[int(rest[1])].events)
        else:
            return self._json(404, {"message": "Not Found"}, counted=True)
        return self._pages(path, query, headers, items, last_modified=rest == ["issues"])

    def _pages(self, path: str, query: dict[str, str], headers, items: list[dict[str, Any]], *,
               last_modified: bool = False) -> Answer:
        """One page of ``items`` as GitHub pages a list: ``Link``, ``ETag``, 304 to a matching ETag."""
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        links = []

        def link(n: int, rel: str) -> str:
            return f'<{self.url}{path}?{urlencode({**query, "page": n})}>; rel="{rel}"'

        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        data = json.dumps(chunk).encode()
        etag = '"' + hashlib.sha1(data).hexdigest() + '"'
        extra = {"Link": ", ".join(links)} if links else {}
        if chunk and last_modified:
            newest = max(datetime.fromisoformat(i["updated_at"].replace("Z", "+00:00")) for i in chunk)
            extra["Last-Modified"] = format_datetime(newest, usegmt=True)
        if headers.get("If-None-Match") == etag:
            return self._json(304, None, {"ETag": etag}, counted=False)  # no Link: the client must remember
        return self._json(200, chunk, extra, counted=True, etag=etag)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms delayed-ACK stall per request
    fake: FakeGitHub

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._answer("POST", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def do_PATCH(self) -> None:  # noqa: N802 - http.server's naming
        self._answer("PATCH", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _answer(self, method: str, body: bytes = b"") -> None:
        answer = self.fake.handle(method, self.path, self.headers, body)
        if answer is None:
            self.close_connection = True
            self.fake.log.append((time.time(), self.path, 0))
            return
        status, headers, body = answer
        self.fake.log.append((time.time(), self.path, status))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self._headers_buffer.append(b"\r\n" + body)  # one write for the whole answer
        self.flush_headers()

    def log_message(self, *args) -> None:  # quiet
        pass
