"""Task definitions: labels read from recorded-looking GitHub event histories, features, registry."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from services.predictor.kinds import MODEL_KINDS, UnknownKindError, make_pipeline, shared_features
from services.predictor.tasks import TASKS, UnknownTaskError, get_task
from services.predictor.tasks.issuetype import type_of_label
from services.predictor.tasks.needsdiagnosis import is_moderation_placeholder
from shared.messages import IssueSnapshot

ND = get_task("needsdiagnosis")
IT = get_task("issuetype")


def _issue(title: str, **extra) -> dict:
    return {"number": 131234, "title": title, "body": "**URL**: https://example.com/\nbroken",
            "user": {"login": "webcompat-bot"}, "html_url": "https://github.com/webcompat/web-bugs/issues/131234",
            "repository_url": "https://api.github.com/repos/webcompat/web-bugs", **extra}


def _event(kind: str, at: str, **fields) -> dict:
    return {"id": hash((kind, at)) & 0xFFFFFFF, "event": kind, "created_at": at,
            "actor": {"login": "triager"}, **fields}


def milestoned(title: str, at: str) -> dict:
    return _event("milestoned", at, milestone={"title": title})


def renamed(old: str, new: str, at: str) -> dict:
    return _event("renamed", at, rename={"from": old, "to": new})


def labeled(name: str, at: str, kind: str = "labeled") -> dict:
    return _event(kind, at, label={"name": name, "color": "ededed"})


def test_milestoned_needsdiagnosis_is_positive_even_if_moved_on_later():
    events = [labeled("browser-firefox", "2024-01-10T10:00:00Z"),
              milestoned("needstriage", "2024-01-10T10:00:01Z"),
              _event("demilestoned", "2024-01-11T09:00:00Z", milestone={"title": "needstriage"}),
              milestoned("needsdiagnosis", "2024-01-11T09:00:01Z"),
              _event("demilestoned", "2024-02-01T09:00:00Z", milestone={"title": "needsdiagnosis"}),
              milestoned("needscontact", "2024-02-01T09:00:01Z")]
    assert ND.label_from_history(_issue("example.com - site is not usable"), events) == "needsdiagnosis"


def test_never_milestoned_needsdiagnosis_is_negative():
    events = [milestoned("needstriage", "2024-01-10T10:00:01Z"),
              milestoned("invalid", "2024-01-12T10:00:01Z"),
              _event("closed", "2024-01-12T10:00:02Z")]
    assert ND.label_from_history(_issue("example.com - site is not usable"), events) == "not-needsdiagnosis"
    assert ND.label_from_history(_issue("example.com - design is broken"), []) == "not-needsdiagnosis"


def test_original_title_is_the_from_of_the_earliest_rename_whatever_the_order_given():
    events = [renamed("example.com - Login button does nothing", "example.com - Login broken",
                      "2024-03-02T00:00:00Z"),
              renamed("example.com - site is not usable", "example.com - Login button does nothing",
                      "2024-03-01T00:00:00Z")]
    issue = _issue("example.com - Login broken")
    assert ND.original_title(issue, events) == "example.com - site is not usable"
    assert ND.original_title(issue, []) == "example.com - Login broken"
    triaged = events + [milestoned("needsdiagnosis", "2024-03-03T00:00:00Z")]
    snapshot, label = ND.example_from_history(issue, triaged)
    assert (snapshot.title, label) == ("example.com - site is not usable", "needsdiagnosis")
    assert (snapshot.repo, snapshot.number) == ("webcompat/web-bugs", 131234)
    assert snapshot.author == "webcompat-bot"


@pytest.mark.parametrize("placeholder", ["In the moderation queue.", "IN THE MODERATION QUEUE",
                                         "Issue 131234 is in the moderation queue"])
def test_a_moderated_report_counts_with_the_title_it_was_released_with(placeholder):
    events = [labeled("action-needsmoderation", "2024-01-10T10:00:00Z"),
              renamed(placeholder, "example.com - video does not play", "2024-01-10T10:05:00Z"),
              labeled("action-needsmoderation", "2024-01-10T10:05:01Z", kind="unlabeled"),
              renamed("example.com - video does not play", "example.com - HLS stream stalls",
                      "2024-01-11T09:00:00Z"),
              milestoned("needsdiagnosis", "2024-01-11T09:00:01Z")]
    issue = _issue("example.com - HLS stream stalls")
    snapshot, label = ND.example_from_history(issue, events)
    assert (snapshot.title, label) == ("example.com - video does not play", "needsdiagnosis")
    assert snapshot.body == issue["body"]  # the body as released (moderation replaced the placeholder's)
    released = events[:3]  # released, never renamed again nor triaged yet
    assert ND.example_from_history(_issue("example.com - video does not play"), released)[0].title == \
        "example.com - video does not play"
    assert ND.label_from_history(_issue(placeholder), events[:1]) is None  # still waiting in moderation


def test_a_report_rejected_in_moderation_is_left_out():
    events = [renamed("In the moderation queue.", "Issue closed.", "2024-01-10T10:05:00Z"),
              _event("closed", "2024-01-10T10:05:01Z")]
    assert ND.label_from_history(_issue("Issue closed."), events) is None


@pytest.mark.parametrize("milestones, expected", [
    (["needstriage", "needsdiagnosis"], "needsdiagnosis"),
    (["needstriage", "moved"], "needsdiagnosis"),        # bugbug: moved to Bugzilla counts
    (["needstriage", "needscontact"], "needsdiagnosis"),  # diagnosed as a site problem
    (["needstriage", "contactready"], "needsdiagnosis"),
    (["needstriage", "sitewait"], "needsdiagnosis"),
    (["needstriage", "invalid"], "not-needsdiagnosis"),
    (["needstriage", "duplicate"], "not-needsdiagnosis"),
    (["needstriage", "incomplete"], "not-needsdiagnosis"),
    (["needstriage", "worksforme"], "not-needsdiagnosis"),
    (["needstriage", "non-compat"], "not-needsdiagnosis"),
    (["needstriage"], "not-needsdiagnosis"),
])
def test_the_milestones_after_triage(milestones, expected):
    events = [milestoned(title, f"2024-01-1{n}T00:00:00Z") for n, title in enumerate(milestones)]
    assert ND.label_from_history(_issue("example.com - site is not usable"), events) == expected


def test_a_later_rename_to_a_placeholder_does_not_skip():
    events = [renamed("example.com - site is not usable", "In the moderation queue.", "2024-01-10T10:05:00Z")]
    assert not is_moderation_placeholder("example.com - site is not usable")
    assert ND.label_from_history(_issue("In the moderation queue."), events) == "not-needsdiagnosis"


@pytest.mark.parametrize("labels, expected", [
    ([{"name": "type: bug"}], "bug"),
    ([{"name": "priority: high"}, {"name": "enhancement"}], "feature"),
    (["kind/feature-request"], "feature"),
    ([{"name": "question"}, {"name": "bug"}], "question"),  # first matching label wins
    ([{"name": "debug-tools"}, {"name": "good first issue"}], None),
    ([], None),
])
def test_issuetype_label_from_issue_labels(labels, expected):
    assert IT.label_from_history(_issue("t", labels=labels), []) == expected


def test_issuetype_replays_label_events_when_the_issue_has_no_labels():
    events = [labeled("bug", "2024-01-01T00:00:00Z"), labeled("question", "2024-01-01T00:01:00Z"),
              labeled("bug", "2024-01-02T00:00:00Z", kind="unlabeled")]
    assert IT.label_from_history(_issue("t"), events) == "question"
    assert type_of_label("Bugs") == "bug" and type_of_label("debugger") is None


def test_needsdiagnosis_text_drops_the_report_template_and_keeps_what_the_reporter_wrote():
    body = ("<!-- @browser: Firefox 121.0 -->\n<!-- @reported_with: desktop-reporter -->\n\n"
            "**URL**: https://www.example.com/videos/123?x=1\n\n**Browser / Version**: Firefox 121.0\n"
            "**Operating System**: Windows 10\n**Tested Another Browser**: Yes Chrome\n\n"
            "**Problem type**: Video or audio doesn't play\n**Description**: There is no video\n"
            "**Steps to Reproduce**:\nThe player stays black.\n\n"
            "<details>\n<summary>Browser Configuration</summary>\n"
            "<ul><li>gfx.webrender.all: false</li></ul>\n</details>\n\n"
            "_From [webcompat.com](https://webcompat.com/) with ❤️_")
    issue = IssueSnapshot("webcompat/web-bugs", 1, "u", "www.example.com - video or audio doesn't play",
                          body, "webcompat-bot")
    text = ND.text(issue)
    assert "The player stays black." in text and "www.example.com" in text and "There is no video" in text
    for noise in ("Operating System", "gfx.webrender", "webcompat.com", "reported_with", "**", "videos/123"):
        assert noise not in text
    assert IT.text(issue).startswith(issue.title)


def test_registry_and_unknown_task():
    assert set(TASKS) == {"needsdiagnosis", "issuetype"}
    for name, task in TASKS.items():
        assert task.name == name and isinstance(task.labels, tuple) and len(task.labels) >= 2
        for kind in MODEL_KINDS:  # built without the optional encoders: they load at first use
            pipeline = make_pipeline(task, kind)
            assert isinstance(pipeline, Pipeline) and not hasattr(pipeline, "classes_")
            clone(pipeline)  # a valid, unfitted estimator
    assert [shared_features(kind) is None for kind in MODEL_KINDS] == [True, True, False]
    with pytest.raises(UnknownKindError, match=r"unknown model kind 'huge' \(known: light, heavy, tuned\)"):
        make_pipeline(TASKS["issuetype"], "huge")
    with pytest.raises(UnknownTaskError, match=r"unknown task 'needsdiag'.*issuetype, needsdiagnosis") as err:
        get_task("needsdiag")
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)


def test_markers_read_how_an_issue_is_written_not_its_words():
    from services.predictor.tasks.markers import MARKERS, Markers

    names = [name for name, _, _ in MARKERS]
    texts = ["How do I set the timeout?\nIs there a way to configure it? Any idea?",
             "Crash on start\n### Steps to reproduce\n```\nTraceback (most recent call last):\n"
             "ValueError: bad\n```\nExpected behavior: no crash. Version 1.2.3",
             "Add an option to export CSV\nIt would be nice to have an export button."]
    out = Markers().fit(texts).transform(texts)
    assert out.shape == (3, len(MARKERS) + 1) and out.dtype == np.float32
    on = {i: {names[j] for j in range(len(names)) if out[i, j] > 0} for i in range(3)}
    assert {"title_question_mark", "title_question_word", "question_body"} <= on[0]
    assert {"code_block", "stack_trace", "repro_steps", "expected_actual", "versions", "headings",
            "title_bug"} <= on[1]
    assert {"title_feature", "feature_template"} <= on[2] and "stack_trace" not in on[2]
    assert np.allclose(Markers(weight=2.0).transform(texts), 2 * out)
