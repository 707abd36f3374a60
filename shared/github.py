"""A small port over GitHub's REST API, shared by ingest (history import, redelivery) and actions
(labels, milestones, comments, closing): pages of a repository's issues, one issue's events,
conditional requests, rate-limit waits, one-line refusals; and one GraphQL call (``graphql``: the
history import's bulk mode), with GraphQL's points budget beside REST's requests.

The library is githubkit (https://github.com/yanyongyu/githubkit), not PyGithub nor a hand-written
client, because it already does the parts that are easy to get wrong, in the shape we need:
- its rate-limit handling follows octokit's (plugin-throttling): a 403/429 with ``Retry-After`` is a
  secondary limit, a 403/429 with ``X-RateLimit-Remaining: 0`` a primary one with its wait computed
  from ``X-RateLimit-Reset``, and its retry hook (``auto_retry``) is a plain function, so each wait
  can be announced (``on_wait``) before the library sleeps;
- it sends any header per request and hands back the raw response (status, headers, JSON), so a
  conditional request (``If-None-Match`` / ``If-Modified-Since``) and its 304 are ours to keep,
  with the validators persisted in the database (PyGithub keeps ETags only on objects it has
  loaded and does not expose a list page's 304);
- it is httpx underneath (base URL, timeouts, connection reuse), typed, maintained (generated from
  GitHub's OpenAPI description, released every few weeks) and has the async twin if we need it.
Its HTTP cache (hishel) is switched off: our validators must outlive the process and be saved
only after the events they stand for are committed (services/ingest/github/state.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.exception import (
    GitHubException,
    PrimaryRateLimitExceeded,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
)
from githubkit.typing import RetryOption

from shared.errors import TransientError, UserError

DEFAULT_BASE_URL = "https://api.github.com"
PER_PAGE = 100
RESET_MARGIN = 1.0  # seconds past X-RateLimit-Reset: GitHub's clock and ours differ a little
MAX_RATE_LIMIT_WAITS = 20  # for one request; each wait lasts until GitHub said the budget is back
MAX_SERVER_RETRIES = 3  # a 5xx is asked again after SERVER_BACKOFF x 1, 4, 9 s, then refused
SERVER_BACKOFF = 1.0


@dataclass(frozen=True)
class Validators:
    """What makes a request conditional, and where the page pointed next."""

    url: str
    etag: str | None
    last_modified: str | None
    next_url: str | None


class GitHubError(UserError):
    """GitHub refused or could not be reached: one line, said as is (exit status 2)."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status  # GitHub's HTTP status, when it answered
        self.reason = reason  # GitHub's own ``message`` (else the status's phrase), when it answered


class GitHubUnreachable(GitHubError, TransientError):
    """No answer from GitHub (connection refused, reset, timed out): a consumer retries in place."""


class GraphQLRefusal(GitHubError):
    """A GraphQL answer that carries ``errors`` (an invalid query, a missing object): one line with
    GitHub's first message (``reason``); ``error_type`` is its ``type`` (``NOT_FOUND``, …) when GitHub
    gave one. GitHub answers these with HTTP 200, which ``status`` keeps."""

    def __init__(self, line: str, reason: str, error_type: str | None):
        super().__init__(line, 200, reason)
        self.error_type = error_type


@dataclass
class Budget:
    """A primary rate limit (REST requests, or GraphQL points) as the last response stated it."""

    limit: int | None = None
    remaining: int | None = None
    reset: int | None = None  # epoch seconds

    def show(self) -> str:
        return "?" if self.remaining is None else f"{self.remaining}/{self.limit}"


@dataclass(frozen=True)
class Page:
    url: str
    status: int  # 200, or 304 (not modified: ``items`` is None)
    items: list[dict[str, Any]] | None
    next_url: str | None
    last_page: int | None
    validators: Validators


@dataclass
class Counters:
    requests: int = 0  # HTTP requests, GraphQL queries among them
    not_modified: int = 0
    queries: int = 0  # GraphQL queries answered with data
    points: int = 0  # GraphQL points they cost (the sum of each answer's ``rateLimit.cost``)
    waits: list[float] = field(default_factory=list)  # seconds waited, rate limits and retries


@dataclass(frozen=True)
class Hook:
    """A repository's webhook (``repo`` and ``hook_id``), or, with neither, the GitHub App's own."""

    repo: str | None = None
    hook_id: int | None = None

    @property
    def path(self) -> str:
        return f"{repo_path(self.repo)}/hooks/{self.hook_id}" if self.repo else "app/hook"

    @property
    def name(self) -> str:
        return f"{self.repo} webhook {self.hook_id}" if self.repo else "the GitHub App's webhook"


def repo_path(repo: str) -> str:
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise GitHubError(f"repository {repo!r} is not OWNER/REPO")
    return f"repos/{owner}/{name}"


class GitHubClient:
    """Use as a context manager (one HTTP connection pool for the whole import)."""

    def __init__(self, token: str | None, *, base_url: str = DEFAULT_BASE_URL,
                 on_wait: Callable[[str], None] | None = None, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, app: tuple[str, str] | None = None,
                 server_backoff: float = SERVER_BACKOFF):
        """``app``: (App id, private key PEM): authenticate as the GitHub App itself (a JWT githubkit
        signs and renews), which its own webhook's deliveries need; ``token`` is then unused.
        ``server_backoff``: the first wait before asking again after a 5xx (then 4x, 9x)."""
        self.base_url = base_url.rstrip("/")
        self.server_backoff = server_backoff
        self.budget = Budget()  # REST requests
        self.points = Budget()  # GraphQL points
        self.counters = Counters()
        self._largest_cost = 1  # points of the costliest GraphQL query so far: what the next may cost
        self._on_wait = on_wait or (lambda line: None)
        self._sleep = sleep
        auth = AppAuthStrategy(app[0], app[1]) if app else token or None
        self._github = GitHub(auth, base_url=self.base_url + "/", http_cache=False,
                              auto_retry=self._retry, timeout=timeout, user_agent="webcompat-ml-import")

    def __enter__(self) -> GitHubClient:
        self._github.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._github.__exit__(*exc_info)

    # -- the API ---------------------------------------------------------------------------

    def repository(self, repo: str) -> dict[str, Any]:
        """The repository object (the webhook payloads' ``repository``); stops on 401/403/404."""
        response = self._get(f"{self.base_url}/{repo_path(repo)}", {}, what=repo)
        return response.json()

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        """One issue (or pull request) by number; stops on 401/403/404 with one line."""
        url = f"{self.base_url}/{repo_path(repo)}/issues/{number}"
        return self._get(url, {}, what=f"{repo}#{number}").json()

    def hook_deliveries(self, hook: Hook) -> list[dict[str, Any]]:
        """A webhook's recent deliveries (GitHub keeps about 3 days), every page of them."""
        return self.all_pages(f"{self.base_url}/{hook.path}/deliveries?per_page={PER_PAGE}", what=hook.name)

    def redeliver(self, hook: Hook, delivery_id: int) -> None:
        """Ask GitHub to send a delivery again (a new attempt, with the same X-GitHub-Delivery)."""
        url = f"{self.base_url}/{hook.path}/deliveries/{delivery_id}/attempts"
        self._request("POST", url, what=f"{hook.name} delivery {delivery_id}")

    # -- GraphQL ---------------------------------------------------------------------------

    @property
    def graphql_url(self) -> str:
        """GitHub's GraphQL endpoint: ``<base>/graphql`` (api.github.com, a fake on loopback); a GitHub
        Enterprise Server base ``https://HOST/api/v3`` has it at ``https://HOST/api/graphql``."""
        if self.base_url.endswith("/api/v3"):
            return self.base_url.removesuffix("/api/v3") + "/api/graphql"
        return self.base_url + "/graphql"

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, *, what: str) -> dict[str, Any]:
        """The ``data`` of one GraphQL query. Its ``rateLimit`` (when the query selects
        ``rateLimit { cost remaining resetAt limit used }``) becomes the points budget (``points``) and
        its ``cost`` is added to ``counters.points``.

        A spent budget is waited out, as REST's is: before a query when the last answer left fewer
        points than the costliest query so far; after a refusal for the rate limit, which GitHub
        answers either 200 with ``errors: [{type: RATE_LIMITED}]`` or 403 with
        ``X-RateLimit-Remaining: 0``, until ``X-RateLimit-Reset``. Secondary limits (403/429 with
        ``Retry-After``) and 5xx are waited and retried as for REST. Any other ``errors`` raise
        GraphQLRefusal (one line, GitHub's first message); no answer at all raises GitHubUnreachable."""
        body = {"query": query, "variables": dict(variables or {})}
        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            response = self._request("POST", self.graphql_url, body=body, what=what, resource="graphql")
            try:
                answer = response.json()
            except ValueError:
                raise GitHubError(f"GitHub answered the GraphQL query for {what} with no JSON "
                                  f"({response.status_code})", response.status_code) from None
            errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
            if any(e.get("type") in ("RATE_LIMITED", "RATE_LIMIT") for e in errors):
                self._wait_for_reset(_int(response.headers.get("x-ratelimit-reset")) or self.points.reset,
                                     self.points.limit, "points")
                continue
            if errors or not isinstance(answer.get("data"), dict):
                first = errors[0] if errors else {}
                message = " ".join(str(first.get("message") or "no data").split())[:300]
                kind = first.get("type")
                raise GraphQLRefusal(f"GitHub refused the GraphQL query for {what}"
                                     f" ({kind + ': ' if kind else ''}{message})", message, kind)
            data = answer["data"]
            self._note_points(data.get("rateLimit"))
            self.counters.queries += 1
            return data
        raise GitHubError(f"GitHub's GraphQL rate limit is still used up after {MAX_RATE_LIMIT_WAITS} waits")

    def _note_points(self, rate: Any) -> None:
        if not isinstance(rate, dict):
            return
        cost = _int(str(rate.get("cost"))) or 0
        self.counters.points += cost
        self._largest_cost = max(self._largest_cost, cost)
        reset = _epoch(rate.get("resetAt"))
        self.points = Budget(_int(str(rate.get("limit"))), _int(str(rate.get("remaining"))), reset)

    # -- writes (the actions service) -----------------------------------------------------------

    def all_pages(self, url: str, *, what: str) -> list[dict[str, Any]]:
        """Every item of a paginated list, following ``Link: rel="next"``."""
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            page = self.page(next_url, what=what)
            items.extend(page.items or [])
            next_url = page.next_url
        return items

    def issue_events(self, repo: str, number: int) -> list[dict[str, Any]]:
        return self.all_pages(self.events_url(repo, number), what=f"{repo}#{number} events")

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        url = f"{self.base_url}/{repo_path(repo)}/issues/{number}/comments?per_page={PER_PAGE}"
        return self.all_pages(url, what=f"{repo}#{number} comments")

    def milestones(self, repo: str) -> list[dict[str, Any]]:
        url = f"{self.base_url}/{repo_path(repo)}/milestones?state=all&per_page={PER_PAGE}"
        return self.all_pages(url, what=f"{repo} milestones")

    def add_labels(self, repo: str, number: int, labels: list[str]) -> None:
        url = f"{self.base_url}/{repo_path(repo)}/issues/{number}/labels"
        self._request("POST", url, body={"labels": labels}, what=f"{repo}#{number}", need="write")

    def add_comment(self, repo: str, number: int, body: str) -> None:
        url = f"{self.base_url}/{repo_path(repo)}/issues/{number}/comments"
        self._request("POST", url, body={"body": body}, what=f"{repo}#{number}", need="write")

    def update_issue(self, repo: str, number: int, **fields: Any) -> None:
        """PATCH the issue (``state``, ``state_reason``, ``milestone``…)."""
        url = f"{self.base_url}/{repo_path(repo)}/issues/{number}"
        self._request("PATCH", url, body=fields, what=f"{repo}#{number}", need="write")

    def issues_url(self, repo: str, since: str | None = None) -> str:
        """The first page of every issue, open and closed, oldest first: new issues land on the last
        page, so earlier pages keep their ETags and a re-import is answered with 304s."""
        params = {"state": "all", "sort": "created", "direction": "asc", "per_page": PER_PAGE}
        if since:
            params["since"] = since
        return f"{self.base_url}/{repo_path(repo)}/issues?{urlencode(params)}"

    def changed_issues_url(self, repo: str, since: str | None = None) -> str:
        """The first page of the issues updated at or after ``since`` (every issue without it), least
        recently updated first: what changed since a follower's cursor, the newest changes last."""
        params = {"state": "all", "sort": "updated", "direction": "asc", "per_page": PER_PAGE}
        if since:
            params["since"] = since
        return f"{self.base_url}/{repo_path(repo)}/issues?{urlencode(params)}"

    def events_url(self, repo: str, number: int) -> str:
        return f"{self.base_url}/{repo_path(repo)}/issues/{number}/events?per_page={PER_PAGE}"

    def page(self, url: str, known: Validators | None = None, *, what: str = "") -> Page:
        """One page; conditional when ``known`` has validators (a 304 costs no rate limit)."""
        headers = {}
        if known is not None and known.etag:
            headers["If-None-Match"] = known.etag
        if known is not None and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        response = self._get(url, headers, what=what)
        if response.status_code == 304:
            self.counters.not_modified += 1
            next_url = known.next_url if known else None
            return Page(url, 304, None, next_url, None, known or Validators(url, None, None, None))
        links = response.links
        next_url = links.get("next", {}).get("url")
        last = links.get("last", {}).get("url")
        items = response.json()
        if not isinstance(items, list):
            raise GitHubError(f"GitHub answered {url} with a {type(items).__name__}, not a list")
        return Page(url, response.status_code, items, next_url, page_number(last),
                    Validators(url, response.headers.get("etag"), response.headers.get("last-modified"),
                               next_url))

    # -- requests, waits, refusals -----------------------------------------------------------

    def _get(self, url: str, headers: Mapping[str, str], *, what: str) -> httpx.Response:
        return self._request("GET", url, headers, what=what)

    def _request(self, method: str, url: str, headers: Mapping[str, str] | None = None, *,
                 body: Any = None, what: str, need: str = "read", resource: str = "core") -> httpx.Response:
        self._wait_for_budget(resource)
        self.counters.requests += 1
        try:
            response = self._github.request(method, url, headers=dict(headers or {}), json=body).raw_response
        except RequestFailed as exc:
            self._note_budget(exc.response.raw_response)
            raise _refusal(exc, what or url, need) from None
        except RequestError as exc:
            said = f"read {url} from" if method == "GET" else f"send {method} {url} to"
            raise GitHubUnreachable(f"cannot {said} GitHub: {_cause(exc)}") from None
        except GitHubException as exc:
            raise GitHubError(f"GitHub request failed: {exc!r}") from None
        self._note_budget(response)
        return response

    def _note_budget(self, response: httpx.Response) -> None:
        """The ``X-RateLimit-*`` headers, into the budget they are about (``X-RateLimit-Resource``:
        ``graphql`` for the points, anything else for REST requests)."""
        h = response.headers
        if "x-ratelimit-remaining" in h and response.status_code != 304:
            budget = Budget(_int(h.get("x-ratelimit-limit")), _int(h.get("x-ratelimit-remaining")),
                            _int(h.get("x-ratelimit-reset")))
            if h.get("x-ratelimit-resource") == "graphql":
                self.points = budget
            else:
                self.budget = budget

    def _wait_for_budget(self, resource: str = "core") -> None:
        """The last answer said the budget is spent (REST: no request left; GraphQL: fewer points than
        the costliest query so far): wait for its reset instead of earning a refusal."""
        graphql = resource == "graphql"
        b, need = (self.points, self._largest_cost) if graphql else (self.budget, 1)
        if b.remaining is not None and b.remaining < need and b.reset is not None:
            self._wait_for_reset(b.reset, b.limit, "points" if graphql else "requests")

    def _wait_for_reset(self, reset: int | None, limit: int | None, unit: str) -> None:
        """Sleep until ``reset`` (epoch seconds; a minute when GitHub gave none), then forget the budget
        of ``unit`` (``requests``: REST, ``points``: GraphQL) until the next answer states it."""
        seconds = (reset - time.time() + RESET_MARGIN) if reset is not None else 60.0
        if seconds > 0:
            self._announce_primary(seconds, reset, limit, unit)
            self.counters.waits.append(seconds)
            self._sleep(seconds)
        if unit == "points":
            self.points = Budget(limit, None, None)
        else:
            self.budget = Budget(limit, None, None)

    def _retry(self, exc: GitHubException, count: int) -> RetryOption:
        """githubkit's retry hook: say why and how long, then the library sleeps and retries."""
        if isinstance(exc, RateLimitExceeded) and count < MAX_RATE_LIMIT_WAITS:
            seconds = exc.retry_after.total_seconds()
            headers = exc.response.headers
            graphql = headers.get("x-ratelimit-resource") == "graphql"
            if isinstance(exc, PrimaryRateLimitExceeded):
                seconds += RESET_MARGIN
                self._announce_primary(seconds, _int(headers.get("x-ratelimit-reset")),
                                       _int(headers.get("x-ratelimit-limit")),
                                       "points" if graphql else "requests")
            else:
                self._on_wait(f"GitHub secondary rate limit ({exc.response.status_code}): waiting "
                              f"{seconds:.0f} s as Retry-After says")
            self.counters.waits.append(seconds)
            if graphql:
                self.points = Budget(self.points.limit, None, None)
            else:
                self.budget = Budget(self.budget.limit, None, None)
            return RetryOption(True, timedelta(seconds=seconds))
        if (isinstance(exc, RequestFailed) and exc.response.status_code >= 500
                and count < MAX_SERVER_RETRIES):
            seconds = self.server_backoff * (count + 1) ** 2
            self._on_wait(f"GitHub answered {exc.response.status_code}: retrying in {seconds:.0f} s "
                          f"({count + 1} of {MAX_SERVER_RETRIES})")
            self.counters.waits.append(seconds)
            return RetryOption(True, timedelta(seconds=seconds))
        return RetryOption(False)

    def _announce_primary(self, seconds: float, reset: int | None, limit: int | None,
                          unit: str = "requests") -> None:
        at = datetime.fromtimestamp(reset, UTC).strftime("%H:%M:%S UTC") if reset else "its reset"
        api = "GraphQL " if unit == "points" else ""
        self._on_wait(f"GitHub {api}rate limit used up ({limit or '?'} {unit}): waiting "
                      f"{seconds:.0f} s until {at} (X-RateLimit-Reset)")


def _refusal(exc: RequestFailed, what: str, need: str = "read") -> GitHubError:
    status = exc.response.status_code
    try:
        message = exc.response.json().get("message") or ""
    except Exception:  # noqa: BLE001 - a body that is not JSON says nothing more
        message = ""
    said = f" ({status}{': ' + message if message else ''})"
    reason = " ".join(str(message or exc.response.raw_response.reason_phrase or "").split())[:300]
    if isinstance(exc, RateLimitExceeded):
        line = f"GitHub's rate limit is still used up after {MAX_RATE_LIMIT_WAITS} waits{said}"
    elif status == 401:
        line = f"GitHub refused the token{said}: check GITHUB_TOKEN"
    elif status == 403:
        line = (f"GitHub denied access to {what}{said}: the token lacks permission "
                f"(it needs {need} access to issues)")
    elif status == 404:
        line = f"{what} was not found on GitHub{said}: check the name, or give a token that can see it"
    elif status >= 500:
        return GitHubUnreachable(f"GitHub failed on {what}{said}", status, reason)
    else:
        line = f"GitHub refused the request for {what}{said}"
    return GitHubError(line, status, reason)


def _cause(exc: RequestError) -> str:
    inner = getattr(exc, "exc", None)
    return f"{type(inner).__name__}: {inner}" if inner is not None else repr(exc)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _epoch(value: Any) -> int | None:
    """GraphQL's ``resetAt`` (ISO 8601, UTC) as epoch seconds."""
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def page_number(url: str | None) -> int | None:
    if not url:
        return None
    page = httpx.URL(url).params.get("page")
    return _int(page)
