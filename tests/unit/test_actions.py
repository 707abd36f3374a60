"""The actions service's worker against a fake GitHub on loopback (real HTTP) and a migrated SQLite file:
what it sends, what it records, and what it refuses to do."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.actions.effects import Effects, marker
from services.actions.ledger import Ledger
from services.actions.policy import PolicyError, parse_policy
from services.actions.tables import actions
from services.actions.worker import ActionsWorker
from shared.actions import list_actions
from shared.broker.port import Delivery
from shared.database import create_engine
from shared.github import GitHubClient, GitHubUnreachable
from shared.messages import Prediction, encode
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo

REPO = "webcompat/web-bugs"
POLICY = """
[[rule]]
task = "issuetype"
label = "bug"
min_confidence = 0.9
add_labels = ["bug"]

[[rule]]
task = "issuetype"
label = "feature"
min_confidence = 0.9
add_labels = ["feature", "triage"]

[[rule]]
task = "needsdiagnosis"
label = "not-needsdiagnosis"
min_confidence = 0.97
milestone = "needscontact"
comment = "Closing: this does not look like a web compatibility issue."
close = true
"""


def prediction(number: int, label: str = "bug", confidence: float = 0.95, **changes) -> Prediction:
    task = "needsdiagnosis" if "diagnosis" in label else "issuetype"
    values = dict(task=task, model_version="m1", delivery_id=f"d-{number}", position=number, repo=REPO,
                  number=number, label=label, confidence=confidence, probabilities={label: confidence},
                  predicted_at="2026-12-01T10:00:00Z", event="issues", action="opened")
    return Prediction(**{**values, **changes})


def deliveries(*predictions: Prediction) -> list[Delivery]:
    return [Delivery(encode(p), p.task, "wcml.results", {}, False, i) for i, p in enumerate(predictions)]


@pytest.fixture
def github():
    with FakeGitHub() as fake:
        fake.add_repo(SyntheticRepo(REPO, issues=40, events_per_issue=0, long_history=0, pr_every=0))
        yield fake


@pytest.fixture
def engine(sqlite_url):
    engine = create_engine(sqlite_url)
    yield engine
    engine.dispose()


def worker(engine, github: FakeGitHub | None, policy: str = POLICY,
           reports: list | None = None) -> ActionsWorker:
    """``reports``: where the records it reports go (a list; by default, nowhere)."""
    effects = None
    if github is not None:
        effects = Effects(GitHubClient(TOKEN, base_url=github.url).__enter__())
    reports = reports if reports is not None else []
    return ActionsWorker(Ledger(engine), parse_policy(policy), effects, reports.extend)


def recorded(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(actions.c.number, actions.c.action, actions.c.mode,
                                                         actions.c.state).order_by(actions.c.id))]


def test_dry_run_records_every_action_and_sends_nothing(engine, github):
    handler = worker(engine, None).handle
    assert handler(deliveries(prediction(1), prediction(2, "feature"), prediction(3, confidence=0.5),
                              prediction(4, "not-needsdiagnosis", 0.99))) == []
    assert recorded(engine) == [(1, "label", "dry-run", "dry-run"), (2, "label", "dry-run", "dry-run"),
                                (4, "milestone", "dry-run", "dry-run"), (4, "comment", "dry-run", "dry-run"),
                                (4, "close", "dry-run", "dry-run")]
    assert github.writes == [] and github.count == 0


def test_live_labels_once_whatever_comes_after(engine, github):
    handler = worker(engine, github).handle
    handler(deliveries(prediction(1)))
    handler(deliveries(prediction(1)))  # redelivered
    handler(deliveries(prediction(1, model_version="m2", delivery_id="d-1b")))  # a new model agrees
    handler(deliveries(prediction(1, "feature", 0.99, model_version="m3")))  # and another disagrees
    assert [(m, p) for m, p, _ in github.writes] == [("POST", f"/repos/{REPO}/issues/1/labels")]
    assert github.writes[0][2] == {"labels": ["bug"]}
    assert "bug" in github.repos[REPO].issues[1].labels
    assert recorded(engine) == [(1, "label", "live", "done")]


def test_replayed_and_imported_results_never_act(engine, github):
    handler = worker(engine, github).handle
    handler(deliveries(prediction(1, replay_id="r-1"), prediction(2, source="import"),
                       prediction(3, replay_id="r-2", fills_live=True)))
    handler(deliveries(prediction(4, "not-needsdiagnosis", 0.99, source="import")))
    assert github.writes == [] and recorded(engine) == []


def test_a_label_a_person_removed_is_not_added_again(engine, github):
    repo = github.repos[REPO]
    repo.add_event(5, "labeled", "alice", label={"name": "bug", "color": "ededed"})
    repo.add_event(5, "unlabeled", "alice", label={"name": "bug", "color": "ededed"})
    worker(engine, github).handle(deliveries(prediction(5)))
    assert github.writes == []
    [item], _ = list_actions(engine, actions, {"issue": "5"})
    assert item["state"] == "skipped" and "removed by @alice" in item["reason"]


def test_a_label_already_there_is_not_sent_again(engine, github):
    """What a process that died after sending leaves: a pending claim, and the label on GitHub."""
    Ledger(engine).claim([(prediction(6), parse_policy(POLICY).intents(prediction(6))[0])], live=True)
    github.repos[REPO].add_event(6, "labeled", "wcml-bot", label={"name": "bug", "color": "ededed"})
    worker(engine, github).handle(deliveries(prediction(6)))  # the redelivery after the restart
    assert github.writes == []
    [item], _ = list_actions(engine, actions, {"issue": "6"})
    assert (item["state"], item["reason"]) == ("done", "already on the issue: nothing sent")


def test_only_the_missing_labels_of_a_rule_are_sent(engine, github):
    github.repos[REPO].add_event(7, "labeled", "bob", label={"name": "triage", "color": "ededed"})
    worker(engine, github).handle(deliveries(prediction(7, "feature")))
    assert [body for _, _, body in github.writes] == [{"labels": ["feature"]}]


def test_milestone_comment_and_close_in_order_each_once(engine, github):
    handler = worker(engine, github).handle
    handler(deliveries(prediction(8, "not-needsdiagnosis", 0.99)))
    handler(deliveries(prediction(8, "not-needsdiagnosis", 0.99, model_version="m2")))
    issue = github.repos[REPO].issues[8]
    assert [(m, p.rsplit("/", 1)[-1]) for m, p, _ in github.writes] == [("PATCH", "8"), ("POST", "comments"),
                                                                         ("PATCH", "8")]
    assert github.writes[0][2] == {"milestone": 3}  # needscontact, by its number
    assert issue.milestone == "needscontact" and issue.state == "closed"
    assert len(issue.comments) == 1 and marker("needsdiagnosis") in issue.comments[0]["body"]
    assert github.writes[2][2] == {"state": "closed", "state_reason": "not_planned"}


def test_a_comment_already_written_is_found_by_its_marker(engine, github):
    github.repos[REPO].issues[9].comments.append({"id": 1, "body": f"earlier\n\n{marker('needsdiagnosis')}"})
    policy = POLICY.replace('milestone = "needscontact"\n', "").replace("close = true\n", "")
    worker(engine, github, policy).handle(deliveries(prediction(9, "not-needsdiagnosis", 0.99)))
    assert github.writes == []


def test_an_issue_a_person_reopened_is_not_closed_again(engine, github):
    repo = github.repos[REPO]
    repo.add_event(10, "closed", "wcml-bot")
    repo.add_event(10, "reopened", "carol")
    repo.add_event(10, "milestoned", "carol", milestone={"title": "needsdiagnosis"})
    worker(engine, github).handle(deliveries(prediction(10, "not-needsdiagnosis", 0.99)))
    assert [p.rsplit("/", 1)[-1] for _, p, _ in github.writes] == ["comments"]
    listed = list_actions(engine, actions, {"issue": "10"})[0]
    states = {i["action"]: (i["state"], i["reason"]) for i in listed}
    assert states["close"][0] == "skipped" and "reopened by @carol" in states["close"][1]
    assert states["milestone"] == ("skipped", "the issue is on milestone needsdiagnosis: left as it is")


def test_a_refusal_is_recorded_and_a_missing_milestone_fails(engine, github):
    refusal = {"message": "Resource not accessible by integration"}
    github.answer(f"/repos/{REPO}/issues/11/labels", 403, refusal)
    policy = POLICY.replace('"needscontact"', '"no-such-milestone"')
    handler = worker(engine, github, policy).handle
    handler(deliveries(prediction(11), prediction(12, "not-needsdiagnosis", 0.99)))
    items = {(i["number"], i["action"]): i for i in list_actions(engine, actions, {"state": "failed"})[0]}
    assert "needs write access" in items[(11, "label")]["reason"]
    assert items[(12, "milestone")]["reason"] == f"{REPO} has no milestone titled 'no-such-milestone'"


def test_github_out_of_reach_leaves_the_action_pending_for_the_retry(engine, github):
    effects = Effects(GitHubClient(TOKEN, base_url="http://127.0.0.1:9", timeout=2).__enter__())
    with pytest.raises(GitHubUnreachable):
        ActionsWorker(Ledger(engine), parse_policy(POLICY), effects, [].extend).handle(
            deliveries(prediction(13)))
    assert recorded(engine) == [(13, "label", "live", "pending")]
    worker(engine, github).handle(deliveries(prediction(13)))  # the consumer's retry, GitHub back
    assert recorded(engine) == [(13, "label", "live", "done")] and len(github.writes) == 1


def test_a_malformed_result_is_rejected_with_its_reason(engine, github):
    bad = Delivery(b'{"v": 1, "kind": "prediction"}', "issuetype", "wcml.results", {}, False, 0)
    [rejection] = worker(engine, github).handle([bad, *deliveries(prediction(14))])
    assert rejection.delivery is bad and "missing field" in rejection.reason
    assert recorded(engine) == [(14, "label", "live", "done")]


def test_a_dry_run_record_does_not_stand_in_the_way_of_the_live_mode(engine, github):
    worker(engine, None).handle(deliveries(prediction(15)))
    worker(engine, github).handle(deliveries(prediction(15)))
    assert recorded(engine) == [(15, "label", "dry-run", "dry-run"), (15, "label", "live", "done")]


def test_every_record_is_reported_as_made_and_as_settled(engine, github):
    reports: list = []
    worker(engine, None, reports=reports).handle(deliveries(prediction(16)))
    assert [(r.number, r.mode, r.state) for r in reports] == [(16, "dry-run", "dry-run")]
    reports.clear()
    worker(engine, github, reports=reports).handle(deliveries(prediction(17)))
    assert [(r.number, r.state) for r in reports] == [(17, "pending"), (17, "done")]
    assert reports[0].id == reports[1].id and reports[1].reason == "added bug"


def test_a_report_lost_after_the_commit_is_sent_again_with_the_redelivery(engine, github):
    """The process died between settling and reporting: the redelivered result reports the record as it
    stands, and nothing is sent to GitHub again."""
    def lost(records):
        if any(r.state == "done" for r in records):
            raise ConnectionError("gone before the report")

    with pytest.raises(ConnectionError):
        ActionsWorker(Ledger(engine), parse_policy(POLICY), Effects(GitHubClient(
            TOKEN, base_url=github.url).__enter__()), lost).handle(deliveries(prediction(18)))
    reports: list = []
    worker(engine, github, reports=reports).handle(deliveries(prediction(18)))
    assert [(r.number, r.state) for r in reports] == [(18, "done")] and len(github.writes) == 1


@pytest.mark.parametrize(("text", "problem"), [
    ("[[rule]]\ntask = 'issuetype'\nlabel = 'bug'\nmin_confidence = 0.9\n", "says what to do with none"),
    ("[[rule]]\ntask = 'issuetype'\nlabel = 'bug'\nmin_confidence = 1.5\nclose = true\n", "from 0 to 1"),
    ("[[rule]]\ntask = 'issuetype'\nlabel = 'bug'\nmin_precision = true\nclose = true\n",
     "min_precision must be a number"),
    ("[[rule]]\ntask = 'issuetype'\nlabel = 'bug'\nclose = true\n",
     "neither min_confidence nor min_precision"),
    ("[[rule]]\ntask = 'issuetype'\nlabel = 'bug'\nmin_confidence = 0.9\nadd_labels = 'bug'\n", "add_labels"),
    ("[[rule]]\ntask = 'issuetype'\nlabel = 'bug'\nmin_confidence = 0.9\nclose = true\nlabels = []\n",
     "unknown key(s) labels"),
    ("[[rule]]\nlabel = 'bug'\nmin_confidence = 0.9\nclose = true\n", "task must be"),
    ("[rule]\ntask = 1\n", "only [[rule]] tables"),
    ("[[rule]\n", "not valid TOML"),
])
def test_a_bad_policy_is_refused_in_one_line_naming_the_rule(text, problem):
    with pytest.raises(PolicyError, match=None) as caught:
        parse_policy(text, "policy.toml")
    assert problem in str(caught.value) and str(caught.value).startswith("policy.toml")
    assert "\n" not in str(caught.value)


def test_the_packaged_policy_loads():
    """Labels an issue type where the model's training measured at least 0.9 precision at that
    confidence; a prediction without that measure (a bundle from before calibration) never."""
    from services.actions.policy import load_policy

    policy = load_policy()
    assert {r.task for r in policy.rules} == {"issuetype", "needsdiagnosis"}
    assert [i.kind for i in policy.intents(prediction(1, "bug", 0.6, precision=0.9))] == ["label"]
    assert policy.intents(prediction(1, "bug", 0.99, precision=0.89)) == []
    assert policy.intents(prediction(1, "bug", 0.99)) == []
    assert [i.kind for i in policy.intents(prediction(1, "not-needsdiagnosis", 0.95))] == ["label"]


def test_a_rule_may_ask_for_confidence_and_precision_both():
    policy = parse_policy("[[rule]]\ntask = 'issuetype'\nlabel = 'bug'\nmin_confidence = 0.8\n"
                          "min_precision = 0.9\nadd_labels = ['bug']\n")
    assert policy.intents(prediction(1, "bug", 0.8, precision=0.9))
    assert not policy.intents(prediction(1, "bug", 0.79, precision=0.95))
    assert not policy.intents(prediction(1, "bug", 0.95, precision=0.85))
