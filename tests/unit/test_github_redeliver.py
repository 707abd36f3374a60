"""`wcml github redeliver`: GitHub is asked again for exactly the deliveries the event log lacks."""

import threading

import pytest

from services.ingest.event_log import EventLog
from services.ingest.github.commands import redeliver
from services.ingest.webhook import WebhookDelivery
from shared.github import GitHubError, Hook
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo
from tests.waiting import eventually

REPO, HOOK = "webcompat/web-bugs", 4242


@pytest.fixture
def engine(sqlite_engine):
    return sqlite_engine


def attempt(n: int, guid: str, status_code: int, *, event: str = "issues", redelivery: bool = False) -> dict:
    """One entry of GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries, as GitHub's OpenAPI shows it."""
    return {"id": 10_000 + n, "guid": guid, "delivered_at": f"2026-12-01T10:{n // 60:02d}:{n % 60:02d}Z",
            "redelivery": redelivery, "duration": 0.27, "status": "OK" if status_code < 300 else "failed",
            "status_code": status_code, "event": event, "action": "opened" if event == "issues" else None,
            "installation_id": None, "repository_id": 1}


def log_live(engine, guids) -> None:
    EventLog(engine).append_many([WebhookDelivery(g, "4242", "issues", "opened", REPO, i + 1, "someone", "{}")
                                  for i, g in enumerate(guids)])


def test_seven_of_fifty_failed_are_asked_for_exactly_once(engine, capsys):
    guids = [f"guid-{i:02d}" for i in range(50)]
    failed = set(guids[3::7])  # 7 of 50
    assert len(failed) == 7
    deliveries = [attempt(i, g, 502 if g in failed else 202) for i, g in enumerate(guids)]
    deliveries.append(attempt(60, "guid-ping", 200, event="ping"))  # answered pong, never logged
    deliveries.append(attempt(61, guids[0], 500, redelivery=True))  # a failed retry of a logged one
    log_live(engine, [g for g in guids if g not in failed])
    with FakeGitHub() as gh:
        gh.add_repo(SyntheticRepo(issues=1))
        gh.add_hook(REPO, HOOK, list(reversed(deliveries)))
        assert redeliver(engine, Hook(REPO, HOOK), token=TOKEN, base_url=gh.url) == 0
        asked = sorted(delivery for _, _, delivery in gh.redelivered)
    assert asked == sorted(str(10_000 + i) for i, g in enumerate(guids) if g in failed)
    line = capsys.readouterr().out.strip()
    assert "52 attempt(s) of 51 delivery(ies); 43 in the event log, 1 ping(s); 7 missed" in line


def test_watching_asks_for_a_missed_delivery_once_and_never_for_what_arrived(engine):
    deliveries = [attempt(1, "late", 504), attempt(2, "fine", 202)]
    log_live(engine, ["fine"])
    stop = threading.Event()
    with FakeGitHub() as gh:
        gh.add_repo(SyntheticRepo(issues=1))
        gh.add_hook(REPO, HOOK, deliveries)
        watcher = threading.Thread(target=redeliver, args=(engine, Hook(REPO, HOOK)),
                                   kwargs={"token": TOKEN, "base_url": gh.url, "watch": True, "every": 0.2,
                                           "stop": stop})
        watcher.start()
        try:
            eventually(lambda: len(gh.statuses(f"/hooks/{HOOK}/deliveries")) >= 3, timeout=30,
                       message="three passes of the watch")
        finally:
            stop.set()
            watcher.join(10)
        assert [d for _, _, d in gh.redelivered] == ["10001"]  # once, however many passes


def test_an_unknown_hook_is_one_line(engine):
    with FakeGitHub() as gh:
        gh.add_repo(SyntheticRepo(issues=1))
        with pytest.raises(GitHubError, match="webhook 1 was not found on GitHub"):
            redeliver(engine, Hook(REPO, 1), token=TOKEN, base_url=gh.url)


@pytest.fixture(scope="module")
def app_key() -> tuple[str, bytes]:
    """A GitHub App's private key (PEM, as GitHub hands it out) and its public half."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def test_the_apps_own_webhook_is_read_and_redelivered_with_the_apps_jwt(engine, app_key, capsys):
    private, public = app_key
    guids = [f"app-{i:02d}" for i in range(20)]
    failed = {guids[2], guids[11], guids[17]}
    log_live(engine, [g for g in guids if g not in failed])
    with FakeGitHub() as gh:
        deliveries = [attempt(i, g, 502 if g in failed else 202) for i, g in enumerate(guids)]
        gh.add_app_hook("31337", public, deliveries)
        assert redeliver(engine, Hook(), token=TOKEN, base_url=gh.url, app=("31337", private)) == 0
        assert sorted(d for _, _, d in gh.redelivered) == ["10002", "10011", "10017"]
        assert "the GitHub App's webhook: 20 attempt(s)" in capsys.readouterr().out
        with pytest.raises(GitHubError, match="GitHub refused the token"):  # a token cannot read them
            redeliver(engine, Hook(), token=TOKEN, base_url=gh.url)
