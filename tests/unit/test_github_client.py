"""The GitHub client over real HTTP against recorded api.github.com traffic (@octokit/fixtures) and
the fake's synthetic repository: Link pagination, 304s, rate-limit waits, one-line refusals."""

from __future__ import annotations

import time

import pytest

from shared.github import GitHubClient, GitHubError
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo, scenario


@pytest.fixture
def gh():
    with FakeGitHub() as fake:
        yield fake


def client(gh: FakeGitHub, token: str | None = TOKEN, said: list[str] | None = None) -> GitHubClient:
    return GitHubClient(token, base_url=gh.url, on_wait=(said.append if said is not None else None))


def test_follows_the_recorded_link_pagination(gh):
    gh.add_recorded("paginate-issues")
    recorded = scenario("paginate-issues")
    numbers, last_pages = [], []
    with client(gh) as c:
        url = f"{gh.url}/repos/octokit-fixture-org/paginate-issues/issues?per_page=3"
        while url:
            page = c.page(url)
            numbers += [issue["number"] for issue in page.items]
            last_pages.append(page.last_page)
            url = page.next_url
    assert numbers == [issue["number"] for answer in recorded for issue in answer["response"]]
    assert len(numbers) == 13 and gh.statuses() == [200] * 5
    assert last_pages == [5, 5, 5, 5, None]  # the last page has no rel="last"
    assert c.budget.remaining == 4999 and c.budget.limit == 5000
    assert c.counters.requests == 5


def test_a_conditional_request_is_answered_304_and_costs_no_budget(gh):
    gh.add_repo(SyntheticRepo(issues=250))
    with client(gh) as c:
        url = c.issues_url("webcompat/web-bugs")
        first = c.page(url)
        spent = c.budget.remaining
        again = c.page(url, first.validators)
    assert first.status == 200 and len(first.items) == 100 and first.validators.etag
    assert again.status == 304 and again.items is None and again.next_url == first.next_url
    assert gh.rate.remaining == spent and c.counters.not_modified == 1


@pytest.mark.parametrize("token, status, says", [
    ("wrong", 401, "GitHub refused the token (401: Bad credentials): check GITHUB_TOKEN"),
    (TOKEN, 403, "GitHub denied access to webcompat/web-bugs (403: Resource not accessible by personal "
                 "access token): the token lacks permission (it needs read access to issues)"),
    (TOKEN, 404, "webcompat/missing was not found on GitHub (404: Not Found): check the name, or give a "
                 "token that can see it"),
])
def test_a_refusal_is_one_line(gh, token, status, says):
    gh.add_repo(SyntheticRepo(issues=3))
    if status == 403:
        gh.answer("/repos/webcompat/web-bugs", 403, {"message": "Resource not accessible by personal access "
                                                                "token", "documentation_url": "https://docs.github.com/rest"})
    name = "webcompat/missing" if status == 404 else "webcompat/web-bugs"
    with client(gh, token) as c, pytest.raises(GitHubError) as caught:
        c.repository(name)
    assert str(caught.value) == says and "\n" not in str(caught.value)
    assert gh.statuses() == [status]


def test_recorded_error_answers_are_one_line(gh):
    """GitHub's own 404 and 422 bodies, as recorded, served where the client reads."""
    missing = next(a for a in scenario("branch-protection") if a["status"] == 404)
    invalid = next(a for a in scenario("errors") if a["status"] == 422)
    gh.answer("/repos/octokit-fixture-org/branch-protection", 404, missing["response"])
    gh.answer("/repos/octokit-fixture-org/errors", 422, invalid["response"])
    with client(gh) as c:
        with pytest.raises(GitHubError, match=r"^octokit-fixture-org/branch-protection was not found on "
                                              r"GitHub \(404: Branch not protected\)"):
            c.repository("octokit-fixture-org/branch-protection")
        with pytest.raises(GitHubError, match=r"^GitHub refused the request for octokit-fixture-org/errors "
                                              r"\(422: Validation Failed\)$"):
            c.repository("octokit-fixture-org/errors")


def test_a_malformed_repository_name_is_one_line(gh):
    with client(gh) as c, pytest.raises(GitHubError, match="^repository 'web-bugs' is not OWNER/REPO$"):
        c.repository("web-bugs")


@pytest.mark.parametrize("status", [429, 403])
def test_a_secondary_limit_waits_as_retry_after_says(gh, status):
    gh.add_repo(SyntheticRepo(issues=3))
    said: list[str] = []
    gh.secondary_limit(after=1, status=status, retry_after=1)
    with client(gh, said=said) as c:
        start = time.monotonic()
        repository = c.repository("webcompat/web-bugs")
        waited = time.monotonic() - start
    assert repository["full_name"] == "webcompat/web-bugs"
    assert gh.statuses() == [status, 200]
    assert waited >= 1.0 and c.counters.waits == [1.0]
    assert said == [f"GitHub secondary rate limit ({status}): waiting 1 s as Retry-After says"]


def test_a_spent_budget_waits_until_the_announced_reset(gh):
    gh.add_repo(SyntheticRepo(issues=3))
    said: list[str] = []
    gh.exhaust_after(1, reset_in=1.0)
    with client(gh, said=said) as c:
        c.repository("webcompat/web-bugs")
    (exhausted_at, reset), = gh.exhausted
    (_, _, refused), (answered_at, _, ok) = gh.log
    assert (refused, ok) == (403, 200)
    assert answered_at >= reset  # the server saw the retry only after the reset it announced
    assert len(said) == 1 and said[0].startswith("GitHub rate limit used up (5000 requests): waiting")
    assert "(X-RateLimit-Reset)" in said[0]


def test_a_lost_connection_is_one_line(gh):
    gh.add_repo(SyntheticRepo(issues=3))
    gh.drop_request(after=1)
    with client(gh) as c, pytest.raises(GitHubError, match=r"^cannot read http://127\.0\.0\.1:\d+/repos/webcompat/"
                                                            r"web-bugs from GitHub: RemoteProtocolError"):
        c.repository("webcompat/web-bugs")


def test_labels_are_added_as_in_githubs_recorded_exchange(gh):
    """@octokit/fixtures' add-labels-to-issue: the same request body, and GitHub's recorded answer."""
    gh.add_recorded("add-labels-to-issue")
    with client(gh) as c:
        c.add_labels("octokit-fixture-org/add-labels-to-issue", 1, ["Foo", "bAr", "baZ"])
    assert gh.writes == [("POST", "/repos/octokit-fixture-org/add-labels-to-issue/issues/1/labels",
                          {"labels": ["Foo", "bAr", "baZ"]})]
    assert gh.statuses("/labels") == [200]


@pytest.mark.parametrize("status, message", [(410, "This issue was deleted"), (404, "Not Found"),
                                             (451, "Unavailable For Legal Reasons")])
def test_a_refusal_keeps_githubs_status_and_message(gh, status, message):
    gh.add_repo(SyntheticRepo(issues=3))
    gh.answer("/repos/webcompat/web-bugs/issues/2/events", status, {"message": message})
    with client(gh) as c, pytest.raises(GitHubError) as caught:
        c.page(c.events_url("webcompat/web-bugs", 2), what="webcompat/web-bugs#2")
    assert (caught.value.status, caught.value.reason) == (status, message)
    assert gh.statuses() == [status]  # asked once: a refusal is not retried


def test_a_5xx_is_asked_again_a_bounded_number_of_times_with_backoff(gh):
    from shared.github import MAX_SERVER_RETRIES

    gh.add_repo(SyntheticRepo(issues=3))
    gh.answer("/repos/webcompat/web-bugs/issues/2/events", 502, None)  # no body: the status's phrase
    said: list[str] = []
    with GitHubClient(TOKEN, base_url=gh.url, on_wait=said.append, server_backoff=0.05) as c:
        with pytest.raises(GitHubError) as caught:
            c.page(c.events_url("webcompat/web-bugs", 2), what="webcompat/web-bugs#2")
    assert (caught.value.status, caught.value.reason) == (502, "Bad Gateway")
    assert gh.statuses() == [502] * (1 + MAX_SERVER_RETRIES)
    assert c.counters.waits == pytest.approx([0.05, 0.2, 0.45])
    assert said[0] == f"GitHub answered 502: retrying in 0 s (1 of {MAX_SERVER_RETRIES})"
    times = [t for t, _, _ in gh.log]
    assert times[-1] - times[0] >= 0.05 + 0.2 + 0.45 - 0.01
