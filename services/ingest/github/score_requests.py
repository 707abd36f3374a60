"""``ScoreRequest`` messages (``POST /api/v1/issues/<owner>/<repo>/<number>/score``): that issue and
its events fetched from GitHub now and appended to the log as imported history, so the relay
publishes them and the issue is scored within seconds, as bugbug's predict endpoint does.

One request at a time, each on its own: a refusal (a missing issue, a pull request, a bad token) is
dead-lettered with GitHub's answer as the reason, and no other request shares its fate; GitHub out of
reach is transient (the batch is retried in place).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from services.ingest.event_log import EventLog
from services.ingest.github.importer import Importer
from services.ingest.github.state import ImportState
from shared.broker.port import Delivery, Rejection
from shared.github import GitHubClient, GitHubError, GitHubUnreachable
from shared.messages import MessageError, ScoreRequest, decode

log = logging.getLogger(__name__)


class ScoreRequests:
    def __init__(self, engine: sa.Engine, token: str | None, base_url: str):
        self.log = EventLog(engine)
        self.state = ImportState(engine)
        self.token = token
        self.base_url = base_url

    def handle(self, deliveries: list[Delivery]) -> list[Rejection]:
        rejections = []
        with GitHubClient(self.token, base_url=self.base_url, on_wait=log.warning) as client:
            importer = Importer(self.log, client, self.state)
            for delivery in deliveries:
                try:
                    request = decode(delivery.body, ScoreRequest)
                    report = importer.run_issues(request.repo, [request.number])
                except GitHubUnreachable:
                    raise
                except (MessageError, GitHubError) as exc:
                    rejections.append(Rejection(delivery, " ".join(str(exc).split())[:300]))
                    continue
                if report.pull_requests:
                    said = f"{request.repo}#{request.number} is a pull request: only issues are scored"
                    rejections.append(Rejection(delivery, said))
                    continue
                log.info("scoring %s#%d now: %s", request.repo, request.number, report.summary())
        return rejections
