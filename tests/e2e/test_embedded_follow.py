"""`wcml run` with GITHUB_TOKEN and WCML_GITHUB_FOLLOW set follows the repository with no other
command: the event log gains the fake GitHub's issues (tests/github_fake.py, on loopback), and the
dashboard shows the follower."""

import os
import re
import subprocess
import sys

import pytest
import requests
import sqlalchemy as sa

from services.ingest.event_log import event_log
from shared.database import create_engine
from tests.github_fake import TOKEN, FakeGitHub, SyntheticRepo
from tests.harness import free_port
from tests.processes import wait_http
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

REPO = "webcompat/web-bugs"
KEY = "follow-dashboard-key"


def logged_in(base: str) -> requests.Session:
    """A session the dashboard knows: its login form's CSRF token and the key posted, the cookie kept."""
    session = requests.Session()
    form = session.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    answer = session.post(f"{base}/login", data={"key": KEY, "csrf": token}, timeout=10)
    assert answer.ok and answer.url.rstrip("/") == base, answer.status_code
    return session


def test_wcml_run_follows_the_repository_it_is_told_to(tmp_path):
    repo = SyntheticRepo(issues=30, events_per_issue=2, long_history=3)
    expected = {number for number, _ in repo.expected_deliveries()}
    with FakeGitHub() as gh:
        gh.add_repo(repo)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_", "GITHUB_"))}
        env.update(PYTHONUNBUFFERED="1", GITHUB_TOKEN=TOKEN, GITHUB_API_URL=gh.url,
                   WCML_GITHUB_FOLLOW=REPO, WCML_GITHUB_FOLLOW_EVERY="1", WCML_API_KEYS=f"read:{KEY}")
        bind = f"127.0.0.1:{free_port()}"
        out = tmp_path / "run.log"
        with out.open("wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--bind", bind],
                                      cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_http(f"http://{bind}/healthz", timeout=120)
                engine = create_engine(f"sqlite:///{tmp_path}/var/wcml.db")

                def followed() -> bool:
                    with engine.connect() as conn:
                        numbers = set(conn.execute(sa.select(event_log.c.issue_number)
                                                   .where(event_log.c.source == "import")).scalars())
                    assert numbers == expected, f"{len(numbers)} of {len(expected)} issues"
                    return True

                eventually(followed, timeout=60, message=lambda: out.read_text()[-3000:])
                engine.dispose()

                browser = logged_in(f"http://{bind}")

                def shown() -> bool:  # the follower's report, through the queue file, on the dashboard
                    html = browser.get(f"http://{bind}/", timeout=10).text
                    return 'id="follows"' in html and f'href="https://github.com/{REPO}"' in html

                eventually(shown, timeout=30, message="the follower on the dashboard")
                server.terminate()
                assert server.wait(30) == 0, out.read_text()[-3000:]
            finally:
                if server.poll() is None:
                    server.kill()
                    server.wait()
