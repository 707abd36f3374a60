"""What a replay may name: routed tasks, installed model versions (else stored ones), listed in one line."""

import pytest

from shared.known import Known, UnknownName, installed_versions, listed


def install(models, task, *versions):
    for version in versions:
        (models / task / version).mkdir(parents=True)
        (models / task / version / "manifest.json").write_text("{}")


def test_installed_versions_are_version_directories_with_a_manifest(tmp_path):
    install(tmp_path, "needsdiagnosis", "20240102T000000Z", "20240101T000000Z")
    (tmp_path / "needsdiagnosis/.tmp-20240103T000000Z-ab").mkdir()  # being written
    (tmp_path / "needsdiagnosis/half").mkdir()  # no manifest
    assert installed_versions(tmp_path, "needsdiagnosis") == ["20240101T000000Z", "20240102T000000Z"]
    assert installed_versions(tmp_path, "issuetype") == [] == installed_versions(tmp_path / "none", "x")


def test_the_listing_is_sorted_and_bounded():
    assert listed([]) == "none"
    assert listed(["b", "a", "b"]) == "a, b"
    many = listed([f"v{n:03d}" for n in range(100)] + ["x" * 300])
    assert many.endswith("v011 and 89 more") and len(many) < 100


def test_a_replay_names_routed_tasks_and_versions_known_for_each(tmp_path):
    routes = tmp_path / "routes.toml"
    routes.write_text('[[rule]]\ntask = "needsdiagnosis"\nevent = "issues"\n'
                      '[[rule]]\ntask = "issuetype"\nevent = "issues"\n')
    install(tmp_path / "models", "needsdiagnosis", "v1", "v2")
    known = Known.read(routes, tmp_path / "models")
    stored = {"issuetype": ["i1", "v2"]}.get

    def refusal(tasks, model):
        with pytest.raises(UnknownName) as refused:
            known.check_replay(tasks, model, lambda task: stored(task, []))
        return str(refused.value)

    for tasks, model in (((), None), (["needsdiagnosis"], "v1"), (["issuetype"], "i1"), ((), "v2")):
        known.check_replay(tasks, model, lambda task: stored(task, []))
    assert refusal(["nope"], None) == "unknown task 'nope'; known: issuetype, needsdiagnosis"
    assert refusal(["needsdiagnosis"], "i1") == (
        f"unknown model version 'i1' for task needsdiagnosis; known (installed in {tmp_path}/models/"
        "needsdiagnosis): v1, v2")
    assert refusal((), "v1") == (  # every routed task, and issuetype has no bundle here: its stored ones
        "unknown model version 'v1' for task issuetype; known (with predictions; no bundle of issuetype "
        "readable here): i1, v2")
    nowhere = Known(("issuetype",), None)  # no models dir: stored versions only
    with pytest.raises(UnknownName, match=r"known \(with predictions; .*\): none$"):
        nowhere.check_replay(["issuetype"], "v1", lambda task: [])
