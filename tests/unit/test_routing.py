import pytest

from services.samples import issue_payload
from shared.event_routes import NotAnIssueEvent, RulesError, load_rules, matching_tasks, parse_rules, route
from shared.messages import EventEnvelope

RULES = load_rules()


def event(action="opened", sender="someone", label=None, event_name="issues", repo="webcompat/web-bugs"):
    payload = issue_payload(number=9, action=action, sender=sender, repo=repo)
    if label:
        payload["label"] = {"name": label}
    return EventEnvelope(position=1, delivery_id="d", event=event_name, action=action, repo=repo,
                         issue_number=9, sender=sender, received_at="2026-01-01T00:00:00Z", payload=payload)


@pytest.mark.parametrize("e, tasks", [
    (event("opened"), ["issuetype", "needsdiagnosis"]),
    (event("opened", sender="webcompat-bot"), ["issuetype"]),
    (event("edited"), ["issuetype"]),
    (event("unlabeled", label="action-needsmoderation"), ["needsdiagnosis"]),
    (event("unlabeled", label="browser-firefox"), []),
    (event("labeled", label="action-needsmoderation"), []),
    (event("closed"), []),
    (event("created", event_name="issue_comment"), []),
])
def test_default_rules_reproduce_webcompat(e, tasks):
    assert matching_tasks(RULES, e) == tasks


def test_route_inlines_the_issue_snapshot_with_stable_ids():
    first, second = route(RULES, event()), route(RULES, event())
    assert [m.task_id for m in first] == [m.task_id for m in second] == ["d:issuetype", "d:needsdiagnosis"]
    issue = first[0].issue
    assert (issue.repo, issue.number, issue.author) == ("webcompat/web-bugs", 9, "someone")
    assert issue.title.startswith("www.example.com")


def test_repository_and_sender_filters():
    rules = parse_rules('[[rule]]\ntask="t"\nevent="issues"\nrepos=["a/b"]\nsenders=["x"]\n')
    assert matching_tasks(rules, event(repo="a/b", sender="x")) == ["t"]
    assert matching_tasks(rules, event(repo="a/c", sender="x")) == []
    assert matching_tasks(rules, event(repo="a/b", sender="y")) == []


def test_an_issue_rule_on_an_event_without_issue_is_refused():
    rules = parse_rules('[[rule]]\ntask="t"\nevent="push"\n')
    e = EventEnvelope(position=1, delivery_id="d", event="push", action=None, repo="a/b", issue_number=None,
                      sender="x", received_at="2026-01-01T00:00:00Z", payload={})
    with pytest.raises(NotAnIssueEvent):
        route(rules, e)


@pytest.mark.parametrize("text, fragment", [
    ("not toml [", "not valid TOML"), ("", r"no \[\[rule"), ('[[rule]]\ntask="t"\n', "event must be"),
    ('[[rule]]\ntask="t"\nevent="issues"\nactions="opened"\n', "list of strings"),
    ('[[rule]]\ntask="t"\nevent="issues"\ncolour="red"\n', "unknown key"),
])
def test_malformed_rules_are_refused(text, fragment):
    with pytest.raises(RulesError, match=fragment):
        parse_rules(text)
