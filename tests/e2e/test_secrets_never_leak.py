"""No secret leaves the process: sentinel values planted as the webhook secret, the API keys, GITHUB_TOKEN
and a GitHub App private key are found in none of `wcml run`'s outputs after it served webhooks (good,
forged, malformed), API calls (good, bad-key, lacking a scope, bad filters, unknown routes and methods),
a login, a score-now that GitHub answers with an error (dead-lettered), and the commands that read
the instance: not in its stdout or stderr, not in any file under var/ (SQLite databases and their
journals, the queue file, the documents, the models), not in any HTTP answer's status line, headers or
body."""

from __future__ import annotations

import hmac
import http.client
import json
import os
import re
import subprocess
import sys
from urllib.parse import urlencode, urlsplit

import pytest

from services.samples import issue_payload, signed_request
from tests.github_fake import FakeGitHub, SyntheticRepo
from tests.harness import free_port
from tests.processes import wait_http
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

WEBHOOK_SECRET = "SENTINEL-webhook-7f3a9c21e0"
OPERATE_KEY = "SENTINEL-operate-key-91c2d4"
READ_KEY = "SENTINEL-read-key-4b8e6a"
GITHUB_TOKEN = "ghp_SENTINELgithubtoken05d71b"
APP_KEY_LINE = "MIIEpSENTINELappprivatekey8e2f04c9"
APP_PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{APP_KEY_LINE}\n-----END RSA PRIVATE KEY-----"
SENTINELS = (WEBHOOK_SECRET, OPERATE_KEY, READ_KEY, GITHUB_TOKEN, APP_KEY_LINE)
REPO = "webcompat/web-bugs"


class Recorder:
    """Every HTTP answer, whole: status line, headers, body."""

    def __init__(self, base: str):
        self.base, self.answers = base, []

    def send(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             base: str | None = None) -> tuple[int, dict[str, str], bytes]:
        where = urlsplit(base or self.base)
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        head = f"HTTP/1.1 {response.status} {response.reason}\n" + "".join(
            f"{k}: {v}\n" for k, v in response.getheaders())
        self.answers.append(head.encode() + b"\n" + data)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def webhook(self, payload: dict, secret: str = WEBHOOK_SECRET, **changes) -> int:
        request = signed_request(self.base + "/webhooks/github", secret, "issues", payload)
        headers = {k.lower(): v for k, v in [*request.header_items(), *changes.items()]}
        return self.send("POST", "/webhooks/github", request.data, headers)[0]

    def api(self, method: str, path: str, key: str | None = OPERATE_KEY, body: dict | None = None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.send(method, path, json.dumps(body).encode() if body is not None else None, headers)[0]


def leaks(data: bytes) -> list[str]:
    return [s for s in SENTINELS if s.encode() in data]


def test_no_secret_reaches_a_log_a_file_or_an_answer(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WCML_", "AWS_", "GITHUB_"))}
    bind, metrics_bind = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with FakeGitHub(token=GITHUB_TOKEN) as gh:
        gh.add_repo(SyntheticRepo(REPO, issues=30, pr_every=10))
        env.update(PYTHONUNBUFFERED="1", WCML_WEBHOOK_SECRETS=WEBHOOK_SECRET, GITHUB_TOKEN=GITHUB_TOKEN,
                   WCML_API_KEYS=f"operate:{OPERATE_KEY},read:{READ_KEY}", GITHUB_API_URL=gh.url,
                   GITHUB_APP_ID="12345", GITHUB_APP_PRIVATE_KEY=APP_PRIVATE_KEY,
                   WCML_METRICS_BIND=metrics_bind)
        log_path = tmp_path / "run.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--bind", bind],
                                      cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        http = Recorder(f"http://{bind}")
        try:
            wait_http(f"http://{bind}/healthz", timeout=60)
            exercise(http, metrics_bind)
            commands = [subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=tmp_path, env=env,
                                       capture_output=True, timeout=120)
                        for args in (("dead", "list"), ("predictions", "--json"), ("actions", "list"))]
        finally:
            server.terminate()
            assert server.wait(60) == 0, log_path.read_text()[-3000:]

    outputs = {"wcml run's stdout and stderr": log_path.read_bytes()}
    outputs.update({f"wcml {' '.join(c.args[3:])}": c.stdout + c.stderr for c in commands})
    files = [p for p in (tmp_path / "var").rglob("*") if p.is_file()]
    assert {"wcml.db", "queue.db"} <= {p.name for p in files} and any("blobs" in p.parts for p in files)
    assert not {"webhook_secret", "api_key"} & {p.name for p in files}  # set in the environment: none made
    outputs.update({str(p.relative_to(tmp_path)): p.read_bytes() for p in files})
    outputs.update({f"HTTP answer {n}": answer for n, answer in enumerate(http.answers)})
    assert len(http.answers) > 30
    found = {where: leaks(data) for where, data in outputs.items() if leaks(data)}
    assert found == {}, found


def exercise(http: Recorder, metrics_bind: str) -> None:
    """Webhooks, API calls, a login and a failing score-now, each checked for the answer it should get."""
    assert http.webhook(issue_payload(number=3)) == 202
    assert http.webhook(issue_payload(number=4)) == 202
    assert http.webhook(issue_payload(number=5), secret="not-the-secret") == 401  # forged
    malformed = b"{not json"
    assert http.send("POST", "/webhooks/github", malformed, {  # signed, malformed
        "Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": "bad-1",
        "X-Hub-Signature-256": "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), malformed, "sha256").hexdigest(),
    })[0] == 400
    assert http.webhook(issue_payload(number=6), **{"Content-Type": "text/plain"}) in (400, 415)

    def predicted() -> bool:
        return http.api("GET", f"/api/v1/issues/{REPO}/3", READ_KEY) == 200
    eventually(predicted, timeout=60, interval=0.5, message="issue 3's predictions")

    assert http.api("GET", "/api/v1/predictions?limit=5", READ_KEY) == 200
    assert http.api("GET", "/api/v1/predictions", "a-wrong-key") == 401  # a bad key
    assert http.api("GET", "/api/v1/predictions", None) == 401
    assert http.api("GET", "/api/v1/predictions?min_confidence=0.9&max_confidence=0.1") == 400
    assert http.api("GET", "/api/v1/predictions?cursor=forged") == 400
    assert http.api("GET", "/api/v1/nothing") == 404 and http.api("DELETE", "/api/v1/models") == 405
    assert http.api("POST", "/api/v1/replays", READ_KEY, {"tasks": ["issuetype"]}) == 403  # lacks operate
    assert http.api("POST", "/api/v1/replays", OPERATE_KEY, {"tasks": ["nosuchtask"]}) == 400
    assert http.api("POST", "/api/v1/replays", OPERATE_KEY, {"since": "2024-01-01T00:00:00Z"}) == 202
    assert http.api("POST", f"/api/v1/issues/{REPO}/999/score") == 202  # GitHub: 404, dead-lettered
    assert http.api("POST", f"/api/v1/issues/{REPO}/7/score") == 202  # an issue GitHub has

    def scored() -> bool:
        return http.api("GET", f"/api/v1/issues/{REPO}/7", READ_KEY) == 200
    eventually(scored, timeout=60, interval=0.5, message="issue 7, fetched from GitHub and scored")

    assert http.send("GET", "/metrics")[0] == 401
    assert http.send("GET", "/metrics", headers={"Authorization": f"Bearer {READ_KEY}"})[0] == 200
    assert http.send("GET", "/metrics", base=f"http://{metrics_bind}")[0] == 200
    assert http.send("GET", "/openapi.json")[0] == 200 and http.send("GET", "/docs")[0] == 200

    status, headers, form = http.send("GET", "/login")
    cookie = headers["set-cookie"].split(";")[0]
    token = re.search(rb'name="csrf" value="([^"]+)"', form).group(1).decode()
    form_headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    assert http.send("POST", "/login", urlencode({"key": "not-a-key", "csrf": token}).encode(),
                     form_headers)[0] == 401
    status, headers, _ = http.send("POST", "/login", urlencode({"key": READ_KEY, "csrf": token}).encode(),
                                   form_headers)
    assert status == 303
    session = headers["set-cookie"].split(";")[0]
    status, _, page = http.send("GET", "/?task=issuetype", headers={"Cookie": session})
    assert status == 200 and b"Recent predictions" in page
    assert http.send("GET", "/?since=yesterday", headers={"Cookie": session})[0] == 400
    assert http.send("GET", "/")[0] == 303

