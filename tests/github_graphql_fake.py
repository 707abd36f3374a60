"""GitHub's GraphQL API on the loopback fake (``POST /graphql`` of ``FakeGitHub``), over the same
``SyntheticRepo`` its REST API serves.

A query is parsed, validated and executed by graphql-core against GitHub's public schema (the npm
package ``@octokit/graphql-schema``, installed by scripts/test into .cache/), so a query that GitHub
would refuse (an unknown field, a wrong argument, a connection without ``first``/``last`` or with more
than 100) is answered with GraphQL ``errors`` here too. Resolvers read the synthetic repository:
``repository(owner, name) { issues(…) }`` lists its issues oldest first (pull requests are not issues
in GraphQL; deleted and transferred ones are not listed), each with ``labels``, ``assignees``,
``milestone`` and ``timelineItems`` (its REST events as GraphQL's event types); ``node(id)`` finds an
issue again.

Points are charged by GitHub's documented rule ("Rate limits and node limits for the GraphQL API"):
for each connection in the query, the requests needed to fill it (1 under a single object; under
another connection, that connection's ``first``/``last`` times its own requests), summed, divided by
100, rounded to the nearest whole number, at least 1. A budget of 5,000 points an hour answers
``rateLimit`` and the ``X-RateLimit-*`` headers (resource ``graphql``); a query that costs more than
what is left is refused as GitHub refuses it: HTTP 200, ``errors: [{type: RATE_LIMITED}]``,
``X-RateLimit-Remaining: 0`` and the reset.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    build_schema,
    execute,
    get_named_type,
    parse,
    validate,
)
from graphql.utilities import value_from_ast_untyped

from tests.github_fake import MILESTONES, RateLimit, SyntheticIssue, SyntheticRepo, _time

if TYPE_CHECKING:
    from tests.github_fake import Answer, FakeGitHub

SCHEMA = (Path(__file__).parent.parent / ".cache/octokit/node_modules/@octokit/graphql-schema"
          / "schema.graphql")
SCHEMA_VERSION = "15.26.1"
MAX_PAGE = 100
MAX_NODES = 500_000


@lru_cache(maxsize=1)
def github_schema() -> GraphQLSchema:
    """GitHub's public GraphQL schema, built once a test session. Taken as valid: GitHub's deprecates
    some fields in implementations that their interface does not (``Project.id``), which the newest
    GraphQL specification, and so graphql-core 3.3, refuses in a schema; queries are still validated
    against it."""
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} is missing: run scripts/test, or npm install --prefix .cache/octokit "
                    f"@octokit/graphql-schema@{SCHEMA_VERSION}", pytrace=False)
    return build_schema(SCHEMA.read_text(encoding="utf-8"), assume_valid=True, assume_valid_sdl=True)


# -- what a query costs -------------------------------------------------------------------------

@dataclass
class Cost:
    requests: int = 0  # to fill every connection, each as if full
    nodes: int = 0  # at most, every connection full
    errors: list[tuple[str, str]] = field(default_factory=list)  # (GitHub's error type, message)

    @property
    def points(self) -> int:
        """GitHub's rule: requests / 100, rounded to the nearest whole number, at least 1."""
        return max(1, math.floor(self.requests / 100 + 0.5))


def query_cost(schema: GraphQLSchema, document, variables: dict[str, Any]) -> Cost:
    """The cost of the document's (first) operation by GitHub's rule, and its pagination errors."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    cost = Cost()
    root = schema.query_type if operation.operation.value == "query" else schema.mutation_type
    _walk(schema, operation.selection_set, root, 1, fragments, variables, cost)
    if cost.nodes > MAX_NODES:
        cost.errors.append(("MAX_NODE_LIMIT_EXCEEDED", f"This query requests up to {cost.nodes:,} "
                            f"possible nodes which exceeds the maximum limit of {MAX_NODES:,}."))
    return cost


def _walk(schema, selection_set, parent, parents: int, fragments, variables, cost: Cost) -> None:
    """Add the connections under ``selection_set`` (of type ``parent``, ``parents`` of them at most)."""
    for selection in selection_set.selections:
        if isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            typed = schema.get_type(condition.name.value) if condition else parent
            _walk(schema, selection.selection_set, typed, parents, fragments, variables, cost)
            continue
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            typed = schema.get_type(fragment.type_condition.name.value)
            _walk(schema, fragment.selection_set, typed, parents, fragments, variables, cost)
            continue
        assert isinstance(selection, FieldNode)
        name = selection.name.value
        fields = getattr(parent, "fields", {})
        if name.startswith("__") or name not in fields:
            continue
        named = get_named_type(fields[name].type)
        below = parents
        if named.name.endswith("Connection"):
            given = selection.arguments or ()
            args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in given}
            size = args.get("first") if args.get("first") is not None else args.get("last")
            if size is None:
                cost.errors.append(("MISSING_PAGINATION_BOUNDARIES", f"You must provide a `first` or `last` "
                                    f"value to properly paginate the `{name}` connection."))
                size = MAX_PAGE
            elif not 1 <= size <= MAX_PAGE:
                cost.errors.append(("EXCESSIVE_PAGINATION", f"Requesting {size} records on the `{name}` "
                                    f"connection exceeds the `first` limit of {MAX_PAGE} records."))
            cost.requests += parents
            cost.nodes += parents * size
            below = parents * size
        if selection.selection_set is not None:
            _walk(schema, selection.selection_set, named, below, fragments, variables, cost)


# -- the synthetic repository in GraphQL's types -------------------------------------------------

TYPENAMES = {
    "labeled": "LabeledEvent", "unlabeled": "UnlabeledEvent", "closed": "ClosedEvent",
    "reopened": "ReopenedEvent", "renamed": "RenamedTitleEvent", "milestoned": "MilestonedEvent",
    "demilestoned": "DemilestonedEvent", "assigned": "AssignedEvent", "unassigned": "UnassignedEvent",
    "locked": "LockedEvent", "unlocked": "UnlockedEvent", "pinned": "PinnedEvent",
    "unpinned": "UnpinnedEvent",
}
NOT_LISTED = (404, 410)  # transferred, deleted: not in ``issues``


def item_type(typename: str) -> str:
    """``RenamedTitleEvent`` -> ``RENAMED_TITLE_EVENT`` (IssueTimelineItemsItemType)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", typename).upper()


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:v2:{index}".encode()).decode()


def _index(cursor: str) -> int:
    try:
        return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1])
    except (ValueError, IndexError) as exc:
        raise GraphQLError(f"`{cursor}` does not appear to be a valid cursor.") from exc


def connection(items: list[Any], first: int | None = None, after: str | None = None, last: int | None = None,
               before: str | None = None, *, build=None, **_: Any) -> dict[str, Any]:
    """A page of ``items`` as GitHub's connections give it (``nodes``, ``edges``, ``pageInfo``);
    ``build`` turns each item of the page into its node (the others are never built)."""
    start = _index(after) + 1 if after else 0
    end = _index(before) if before else len(items)
    window = list(range(start, max(start, end)))
    chosen = window[:first] if first is not None else window[-last:] if last is not None else window
    nodes = [build(items[i]) if build else items[i] for i in chosen]
    return {
        "nodes": nodes,
        "edges": [{"cursor": _cursor(i), "node": node} for i, node in zip(chosen, nodes, strict=True)],
        "totalCount": len(items),
        "pageInfo": {"hasNextPage": bool(chosen) and chosen[-1] + 1 < len(items),
                     "hasPreviousPage": bool(chosen) and chosen[0] > 0,
                     "startCursor": _cursor(chosen[0]) if chosen else None,
                     "endCursor": _cursor(chosen[-1]) if chosen else None},
    }


def actor(user: dict[str, Any] | None) -> dict[str, Any] | None:
    """A REST user as GraphQL's Actor: an App's bot has no ``[bot]`` in its GraphQL login."""
    if not user:
        return None
    if user.get("type") == "Bot":
        return {"__typename": "Bot", "login": str(user["login"]).removesuffix("[bot]")}
    return {"__typename": "User", "login": user["login"]}


def item(event: dict[str, Any]) -> dict[str, Any] | None:
    """A REST issue event as its GraphQL timeline item; None for a type GraphQL lists elsewhere."""
    typename = TYPENAMES.get(event["event"])
    if typename is None:
        return None
    node = {"__typename": typename, "id": event["node_id"], "createdAt": event["created_at"],
            "actor": actor(event.get("actor"))}
    if "label" in event:
        node["label"] = {"__typename": "Label", **event["label"]}
    if "milestone" in event:
        node["milestoneTitle"] = event["milestone"]["title"]
    if "rename" in event:
        node["previousTitle"], node["currentTitle"] = event["rename"]["from"], event["rename"]["to"]
    if "assignee" in event:
        node["assignee"] = actor(event["assignee"])
    if event["event"] in ("closed", "reopened"):
        node["stateReason"] = (event.get("state_reason") or "").upper() or None
    return node


def issue_node(repo: SyntheticRepo, issue: SyntheticIssue) -> dict[str, Any]:
    rest = repo.issue_json(issue)
    with repo.lock:
        events = list(issue.events)
    items = [n for n in (item(e) for e in events) if n is not None]

    def timeline(itemTypes: list[str] | None = None, since: str | None = None, **page: Any):  # noqa: N803
        chosen = [n for n in items if (itemTypes is None or item_type(n["__typename"]) in itemTypes)
                  and (since is None or n["createdAt"] >= since)]
        return connection(chosen, **page)

    def state_reason(enableDuplicate: bool = False) -> str | None:  # noqa: N803 - GitHub's argument
        reason = (rest.get("state_reason") or "").upper() or None
        return "NOT_PLANNED" if reason == "DUPLICATE" and not enableDuplicate else reason

    milestone = rest["milestone"]
    return {
        "__typename": "Issue", "id": rest["node_id"], "fullDatabaseId": str(rest["id"]),
        "databaseId": lambda: _int32(rest["id"]), "number": rest["number"], "title": rest["title"],
        "body": rest["body"] or "", "state": rest["state"].upper(), "stateReason": state_reason,
        "locked": rest["locked"], "createdAt": rest["created_at"], "updatedAt": rest["updated_at"],
        "closedAt": rest["closed_at"], "url": rest["html_url"], "author": actor(rest["user"]),
        "labels": lambda **page: connection([{"__typename": "Label", "name": lb["name"], "color": lb["color"]}
                                             for lb in rest["labels"]], **page),
        "milestone": {"__typename": "Milestone", "title": milestone["title"], "number": milestone["number"]}
        if milestone else None,
        "assignees": lambda **page: connection([actor(a) for a in rest["assignees"]], **page),
        "timelineItems": timeline,
    }


def _int32(value: int) -> int:
    if value >= 2**31:
        raise GraphQLError("Int cannot represent non 32-bit signed integer value: use fullDatabaseId")
    return value


def listed_issues(repo: SyntheticRepo, filterBy: dict[str, Any] | None = None,  # noqa: N803
                  orderBy: dict[str, Any] | None = None, states: list[str] | None = None,  # noqa: N803
                  **page: Any) -> dict[str, Any]:
    """``Repository.issues``: no pull requests, no deleted or transferred issues."""
    since = (filterBy or {}).get("since")
    chosen = [i for i in repo.listed(since) if not i.pull_request
              and repo.refused.get(i.number, (0, "", 0))[0] not in NOT_LISTED]
    order = orderBy or {"field": "CREATED_AT", "direction": "ASC"}
    key = {"CREATED_AT": lambda i: i.created, "UPDATED_AT": lambda i: i.updated or i.created,
           "COMMENTS": lambda i: len(i.comments)}[order["field"]]
    chosen.sort(key=key, reverse=order.get("direction") == "DESC")
    if states:
        chosen = [i for i in chosen if i.state.upper() in states]
    return connection(chosen, build=lambda issue: issue_node(repo, issue), **page)


# -- the endpoint --------------------------------------------------------------------------------

@dataclass
class GraphQLEndpoint:
    """``POST /graphql`` of one ``FakeGitHub``: its points budget, exhaustions and the cost of each
    query answered (``charged``)."""

    fake: FakeGitHub
    points: RateLimit = field(default_factory=lambda: RateLimit(reset=time.time() + 3600))
    exhaustions: dict[int, float] = field(default_factory=dict)  # request index -> seconds until reset
    exhausted: list[tuple[float, float]] = field(default_factory=list)  # (when, announced reset)
    charged: list[int] = field(default_factory=list)  # points of each query answered with data
    refused: int = 0  # queries refused for the rate limit
    then: dict[int, Any] = field(default_factory=dict)  # n -> what happens on GitHub after the n-th query

    def exhaust_after(self, after: int, reset_in: float) -> None:
        """At the ``after``-th request from now the points are all spent (another client of the same
        token); they come back ``reset_in`` seconds later, rounded up to a whole second."""
        self.exhaustions[self.fake.count + after] = reset_in

    def set_limit(self, *, limit: int, window: float) -> None:
        """``limit`` points a ``window`` of seconds, the first window starting at the next query."""
        self.points = RateLimit(limit, limit, 0.0, window)

    def answer(self, body: bytes, index: int) -> Answer:
        try:
            request = json.loads(body or b"{}")
            document = parse(request["query"])
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            return self._reply({"errors": [{"message": f"Problems parsing JSON or query: {exc}"}]})
        variables = request.get("variables") or {}
        schema = github_schema()
        invalid = validate(schema, document)
        if invalid:
            return self._reply({"errors": [e.formatted for e in invalid]})
        cost = query_cost(schema, document, variables)
        if cost.errors:
            return self._reply({"errors": [{"type": kind, "message": text} for kind, text in cost.errors]})
        rate = self._charge(cost, index)
        if rate is None:
            refusal = {"type": "RATE_LIMITED", "message": "API rate limit already exceeded for user ID 1."}
            return self._reply({"errors": [refusal]}, remaining=0)
        root = {"repository": self._repository, "node": self._node, "rateLimit": lambda dryRun=False: rate}
        result = execute(schema, document, root_value=root, variable_values=variables,
                         field_resolver=_resolve, type_resolver=lambda value, *_: value.get("__typename"))
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [_github_error(e) for e in result.errors]
        if (change := self.then.pop(len(self.charged), None)) is not None:
            change()
        return self._reply(out)

    def _charge(self, cost: Cost, index: int) -> dict[str, Any] | None:
        """Take the query's points from the budget and give its ``rateLimit``; None when fewer are left
        (nothing taken)."""
        with self.fake.lock:
            now = time.time()
            if index in self.exhaustions:
                self.points.remaining = 0
                self.points.reset = float(int(now + self.exhaustions[index]) + 1)
                self.exhausted.append((now, self.points.reset))
            elif now >= self.points.reset:
                self.points.remaining, self.points.reset = self.points.limit, now + self.points.window
            if cost.points > self.points.remaining:
                self.refused += 1
                return None
            self.points.remaining -= cost.points
            self.charged.append(cost.points)
            return {"cost": cost.points, "limit": self.points.limit, "remaining": self.points.remaining,
                    "used": self.points.limit - self.points.remaining, "nodeCount": cost.nodes,
                    "resetAt": _time(datetime.fromtimestamp(int(self.points.reset), UTC))}

    def _repository(self, owner: str, name: str, followRenames: bool = True) -> dict[str, Any]:  # noqa: N803
        repo = self.fake.repos.get(f"{owner}/{name}")
        if repo is None:
            raise GraphQLError(f"Could not resolve to a Repository with the name '{owner}/{name}'.",
                               extensions={"type": "NOT_FOUND"})
        return {"__typename": "Repository", "id": "R_web_bugs", "nameWithOwner": repo.full_name,
                "issues": lambda **args: listed_issues(repo, **args),
                "issue": lambda number: issue_node(repo, repo.issues[number])
                if number in repo.issues and not repo.issues[number].pull_request else None,
                "milestones": lambda **page: connection([{"__typename": "Milestone", "title": t, "number": n}
                                                         for n, t in enumerate(MILESTONES, 1)], **page)}

    def _node(self, id: str) -> dict[str, Any] | None:  # noqa: A002 - GitHub's argument
        for repo in self.fake.repos.values():
            for issue in list(repo.issues.values()):
                listed = repo.refused.get(issue.number, (0, "", 0))[0] not in NOT_LISTED
                if f"I_{issue.number}" == id and not issue.pull_request and listed:
                    return issue_node(repo, issue)
        raise GraphQLError(f"Could not resolve to a node with the global id of '{id}'",
                           extensions={"type": "NOT_FOUND"})

    def _reply(self, body: dict[str, Any], *, remaining: int | None = None) -> Answer:
        with self.fake.lock:
            headers = self.points.headers()
        headers["X-RateLimit-Resource"] = "graphql"
        if remaining is not None:
            headers["X-RateLimit-Remaining"] = str(remaining)
        headers["Content-Type"] = "application/json; charset=utf-8"
        return 200, headers, json.dumps(body).encode()


def _resolve(source: Any, info, **args: Any) -> Any:
    """A dict's value for the field; a callable one is called with the field's arguments."""
    value = source.get(info.field_name) if isinstance(source, dict) else None
    return value(**args) if callable(value) else value


def _github_error(error: GraphQLError) -> dict[str, Any]:
    """graphql-core's error in GitHub's form: its ``type`` beside the message, not in extensions."""
    out = error.formatted
    kind = (error.extensions or {}).get("type")
    if kind:
        out = {"type": kind, **{k: v for k, v in out.items() if k != "extensions"}}
    return out
